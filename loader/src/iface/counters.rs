//! Counters of an attached interface: a generation's totals are its per-CPU maps plus what was carried
//! into it from the generation it replaced (`gen-N.carry.json`).
//!
//! Loss-free across a swap: the carry is read from the old generation *after* the flip and after an
//! RCU grace period (`membarrier(MEMBARRIER_CMD_GLOBAL)`, which runs `synchronize_rcu()`; XDP
//! programs run inside RCU read-side sections), so every packet the old generation counted is in it,
//! and every later packet is counted by the new one. Linear: rules are matched by identity through a
//! hash map.
use std::collections::HashMap;

use aya::maps::{Map, MapData, PerCpuArray, PerCpuValues};
use tailwall_abi as abi;

use super::{
    paths::Paths,
    record::{read_json, write_json, Carry, State},
};
use crate::{
    error::{map_err, sys, IfaceError, LoadError},
    generation::read_counters,
};

/// Name of a `tw_reasons` slot.
pub fn reason_name(slot: u32) -> &'static str {
    match slot {
        abi::REASON_POLICY => "policy",
        abi::REASON_NOT_IPV4 => "not_ipv4",
        abi::REASON_MALFORMED => "malformed",
        abi::REASON_TAIL_CALL => "tail_call",
        abi::REASON_BOUND => "bound",
        abi::REASON_HOTDROP => "hotdrop",
        abi::REASON_MAP => "map",
        _ => "unknown",
    }
}

pub(crate) fn open_pinned_map(paths: &Paths, n: u64, name: &'static str) -> Result<Map, LoadError> {
    let data = MapData::from_pin(paths.gen_dir(n).join(name)).map_err(map_err(name))?;
    Map::from_map_data(data).map_err(map_err(name))
}

/// Totals of generation `n` (maps plus carry): (by rule index, by reason slot).
pub(crate) fn totals(
    paths: &Paths,
    n: u64,
) -> Result<(Vec<abi::Counter>, Vec<abi::Counter>), IfaceError> {
    counts(paths, n, true)
}

/// Generation `n`'s maps, plus its carry when `with_carry`.
fn counts(
    paths: &Paths,
    n: u64,
    with_carry: bool,
) -> Result<(Vec<abi::Counter>, Vec<abi::Counter>), IfaceError> {
    let mut rules = read_counters(
        &open_pinned_map(paths, n, abi::MAP_RULE_CNT)?,
        abi::MAP_RULE_CNT,
    )?;
    let mut reasons = read_counters(
        &open_pinned_map(paths, n, abi::MAP_REASONS)?,
        abi::MAP_REASONS,
    )?;
    let carry: Carry = if with_carry {
        read_json(&paths.carry(n))?.unwrap_or_default()
    } else {
        Carry::default()
    };
    for (into, from) in [(&mut rules, &carry.rules), (&mut reasons, &carry.reasons)] {
        for (c, [p, b]) in into.iter_mut().zip(from) {
            c.packets += p;
            c.bytes += b;
        }
    }
    Ok((rules, reasons))
}

/// Wait until every XDP program run that started before now has finished: `synchronize_rcu()` through
/// `membarrier(MEMBARRIER_CMD_GLOBAL)`; where that is refused (nohz_full), 10 ms.
pub(crate) fn rcu_grace_period() {
    const MEMBARRIER_CMD_GLOBAL: libc::c_long = 1;
    // SAFETY: membarrier takes no pointers.
    let r = unsafe { libc::syscall(libc::SYS_membarrier, MEMBARRIER_CMD_GLOBAL, 0, 0) };
    if r != 0 {
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
}

/// The carry of generation `to` (record `to_rec`) from generation `from`: `from`'s totals (its maps
/// only unless `with_carry`) moved to `to`'s rule indices by identity (each old rule at most once),
/// reasons by slot.
pub(crate) fn carry_from(
    paths: &Paths,
    from: u64,
    from_rec: &State,
    to_rec: &State,
    with_carry: bool,
) -> Result<Carry, IfaceError> {
    let (rules, reasons) = counts(paths, from, with_carry)?;
    let mut by_identity: HashMap<&str, u32> = HashMap::with_capacity(from_rec.rules.len());
    for r in &from_rec.rules {
        by_identity.entry(r.identity.as_str()).or_insert(r.index);
    }
    let mut carry = Carry {
        rules: vec![[0, 0]; to_rec.rules.len()],
        reasons: reasons.iter().map(|c| [c.packets, c.bytes]).collect(),
    };
    for r in &to_rec.rules {
        if let Some(i) = by_identity.remove(r.identity.as_str()) {
            if let (Some(c), Some(slot)) =
                (rules.get(i as usize), carry.rules.get_mut(r.index as usize))
            {
                *slot = [c.packets, c.bytes];
            }
        }
    }
    Ok(carry)
}

/// Compute and write generation `to`'s carry from `from` (after the flip).
pub(crate) fn write_carry(
    paths: &Paths,
    from: u64,
    from_rec: &State,
    to_rec: &State,
) -> Result<(), IfaceError> {
    let carry = carry_from(paths, from, from_rec, to_rec, true)?;
    write_json(&paths.carry(to_rec.generation), &carry)
}

/// Zero every slot of a pinned per-CPU counter map of generation `n`.
pub(crate) fn zero_map(paths: &Paths, n: u64, name: &'static str) -> Result<(), IfaceError> {
    let mut map = open_pinned_map(paths, n, name)?;
    let mut arr: PerCpuArray<&mut MapData, abi::Counter> =
        PerCpuArray::try_from(&mut map).map_err(map_err(name))?;
    let ncpus = aya::util::nr_cpus().map_err(|(_, e)| sys("reading possible cpus")(e))?;
    for i in 0..arr.len() {
        let zeros = PerCpuValues::try_from(vec![abi::Counter::default(); ncpus])
            .map_err(sys("per-cpu counter reset"))?;
        arr.set(i, zeros, 0).map_err(map_err(name))?;
    }
    Ok(())
}

/// `into[i] += from[i]`, growing `into` to `from`'s length.
pub(crate) fn add_into(into: &mut Vec<[u64; 2]>, from: &[[u64; 2]]) {
    if into.len() < from.len() {
        into.resize(from.len(), [0, 0]);
    }
    for (a, b) in into.iter_mut().zip(from) {
        a[0] += b[0];
        a[1] += b[1];
    }
}
