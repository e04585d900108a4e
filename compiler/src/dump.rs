//! The artifact's stable text dump (snapshots, `tailwall compile --dump`): decoded through the artifact
//! contract ([`Layout::check`]), so it shows what the kernel gets. Kept out of `artifact` so that the
//! artifact (data) does not depend on its readers.
use crate::artifact::{Artifact, PositionOrigin};
use crate::layout::{Layout, StageLayout, StageTable};
use std::fmt::Write as _;
use tailwall_abi as abi;

impl Artifact {
    /// Stable text dump for snapshots: globals, stage order, rules, maps, and per field its classes
    /// (as rule-index sets) and its table (runs of equal class for arrays, one line per LPM entry).
    /// Decoded from the images, so it shows what the kernel gets.
    pub fn dump(&self) -> String {
        let mut o = String::new();
        let g = &self.globals;
        let _ = writeln!(
            o,
            "artifact abi={} hook={}",
            self.abi_version,
            self.hook.chain_name()
        );
        let _ = writeln!(
            o,
            "globals nchunks={} nstages={} npositions={} nvisits={}",
            g.nchunks, g.nstages, g.nrules, g.nvisits
        );
        let mut st: Vec<String> = self
            .stages
            .iter()
            .enumerate()
            .map(|(i, f)| format!("{i}:{f}"))
            .collect();
        st.push(format!("{}:final", self.stages.len()));
        let _ = writeln!(o, "stages {}", st.join(" "));
        for r in &self.regions {
            let _ = writeln!(
                o,
                "region {} {} {} chain={} policy={} positions={}..{} max_visits={}",
                r.slot,
                r.chain_name,
                r.family.as_str(),
                r.chain.map_or("none".to_string(), |c| c.to_string()),
                r.policy.as_str(),
                r.first,
                r.end,
                r.max_visits
            );
        }
        for r in &self.rules {
            let _ = write!(
                o,
                "rule {} {} {}#{} {} [{}] id={}",
                r.index,
                r.id,
                r.chain,
                r.position,
                r.action,
                r.text,
                r.identity.get(..12).unwrap_or(&r.identity)
            );
            if let Some(c) = &r.comment {
                let _ = write!(o, " # {c:?}");
            }
            o.push('\n');
        }
        let layout = Layout::check(self);
        for q in &self.positions {
            let l4 = match &layout {
                Ok(l)
                    if l.rules
                        .get(q.index as usize)
                        .is_some_and(|s| s.flags & abi::RULE_F_NEEDS_L4 != 0) =>
                {
                    " l4"
                }
                _ => "",
            };
            let what = match q.origin {
                PositionOrigin::Rule(i) => {
                    self.rules.get(i as usize).map_or(format!("rule {i}"), |r| {
                        format!("{} {}#{}", r.id, r.chain, r.position)
                    })
                }
                PositionOrigin::Policy(i) => self
                    .regions
                    .get(i as usize)
                    .map_or(format!("policy of region {i}"), |r| {
                        format!("policy {} {}", r.chain_name, r.family.as_str())
                    }),
                PositionOrigin::FallOff => "goto fall-off".to_string(),
            };
            let step = match q.action {
                abi::ACTION_ACCEPT => "accept".to_string(),
                abi::ACTION_DROP => "drop".to_string(),
                abi::ACTION_CONTINUE => format!("continue {}", q.next),
                c => format!("action {c}"),
            };
            let _ = writeln!(o, "pos {} {what} -> {step}{l4}", q.index);
        }
        for m in &self.maps {
            let _ = writeln!(
                o,
                "map {} {:?} key={} value={} max_entries={} entries={}",
                m.name,
                m.kind,
                m.key_size,
                m.value_size,
                m.max_entries,
                m.entries.len()
            );
        }
        match &layout {
            Err(e) => {
                let _ = writeln!(o, "invalid images: {e}");
            }
            Ok(l) => {
                for s in &l.stages {
                    dump_stage(s, l.nchunks, &mut o);
                }
            }
        }
        let _ = writeln!(o, "digest {}", self.digest);
        o
    }
}

/// Append the dump of one stage's classes and table (see [`Artifact::dump`]).
fn dump_stage(s: &StageLayout, nchunks: usize, o: &mut String) {
    let words = nchunks * abi::CHUNK_WORDS;
    let _ = writeln!(o, "field {} classes={}", s.field, s.nclasses);
    for c in 0..s.nclasses {
        let v = &s.vectors[c * words..(c + 1) * words];
        let ones = v.iter().enumerate().flat_map(|(i, &w)| {
            (0..64)
                .filter(move |b| w >> b & 1 != 0)
                .map(move |b| i * 64 + b)
        });
        let _ = writeln!(o, "  class {c} = {}", ranges(ones));
    }
    match &s.table {
        StageTable::Iface(t) => {
            // iptables' spelling: `eth+` for a wildcard key, `+` for the root (every other name,
            // and "no device").
            for k in &t.keys {
                let plus = if k.wildcard { "+" } else { "" };
                let _ = writeln!(o, "  name {}{plus} -> {}", k.name, k.class);
            }
        }
        StageTable::Lpm(by_len) => {
            let mut es: Vec<(u128, u8, u32)> = by_len
                .iter()
                .flat_map(|(l, m)| m.iter().map(move |(&a, &c)| (a, *l, c)))
                .collect();
            es.sort();
            for (a, l, c) in es {
                let _ = writeln!(o, "  {}/{l} -> {c}", crate::ir::DisplayAddr(a, s.field));
            }
        }
        StageTable::Array(t) => {
            let label = |i: usize| match i as u32 {
                abi::PORT_ABSENT if t.len() == abi::PORT_TABLE_ENTRIES as usize => {
                    "absent".to_string()
                }
                abi::PORT_TRUNCATED if t.len() == abi::PORT_TABLE_ENTRIES as usize => {
                    "truncated".to_string()
                }
                _ => i.to_string(),
            };
            let values = if t.len() == abi::PORT_TABLE_ENTRIES as usize {
                65536
            } else {
                t.len()
            };
            let mut i = 0;
            while i < t.len() {
                let mut j = i;
                while j + 1 < values && i < values && t[j + 1] == t[i] {
                    j += 1;
                }
                if i == j {
                    let _ = writeln!(o, "  {} -> {}", label(i), t[i]);
                } else {
                    let _ = writeln!(o, "  {}-{} -> {}", label(i), label(j), t[i]);
                }
                i = j + 1;
            }
        }
    }
}

/// `0-3,5,9-10` (or `-` for the empty set).
fn ranges(ones: impl Iterator<Item = usize>) -> String {
    let mut out: Vec<String> = Vec::new();
    let mut run: Option<(usize, usize)> = None;
    let flush = |run: Option<(usize, usize)>, out: &mut Vec<String>| match run {
        Some((a, b)) if a == b => out.push(a.to_string()),
        Some((a, b)) => out.push(format!("{a}-{b}")),
        None => {}
    };
    for i in ones {
        run = match run {
            Some((a, b)) if b + 1 == i => Some((a, i)),
            r => {
                flush(r, &mut out);
                Some((i, i))
            }
        };
    }
    flush(run, &mut out);
    if out.is_empty() {
        "-".to_string()
    } else {
        out.join(",")
    }
}
