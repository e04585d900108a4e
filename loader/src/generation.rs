//! One generation: the datapath object loaded for one artifact, every map sized and filled from the
//! artifact's images, and two fresh prog arrays wired (`stages[i]` at index `i`, the final program at
//! `nstages`): `tw_progs` with the XDP programs (INPUT/FORWARD, entry `tw_entry`) and `tw_progs_tc`
//! with the same stages as tc programs (OUTPUT at tcx egress, entry `tw_egress`). Both chains share
//! every other map, so one generation serves both hooks (`docs/decisions/0012`).
//!
//! Guarantees: [`Generation::load`] either returns a complete generation or an error (a verifier
//! rejection carries the verifier log); nothing is attached or pinned by it. Only the entry, the final
//! program, `tw_pass` and the used stages are loaded; unused stage maps get one entry.
//! A generation lives as long as its file descriptors (or its pins, see `crate::iface`).
use std::{
    collections::BTreeMap,
    os::fd::{AsFd, BorrowedFd},
    time::{Duration, Instant},
};

use aya::{
    maps::{Map, MapData, PerCpuArray, ProgramArray},
    programs::{ProgramError, SchedClassifier, Xdp},
    Ebpf, EbpfLoader,
};
use tailwall_abi as abi;
use tailwall_compiler::{
    artifact::Artifact,
    ir::Field,
    layout::{object_maps, Layout, LayoutError},
};

use crate::{
    error::{map_err, prog_err, sys, LoadError},
    kfunc::{self, Kfuncs},
    object::OBJECT,
    sys as raw,
};

/// The datapath row of a stage field (`artifact::check` rejects a stage without one first).
fn stage_row(field: Field) -> Result<&'static abi::FieldAbi, LoadError> {
    field
        .info()
        .datapath
        .ok_or_else(|| LoadError::Artifact(format!("field {field} has no datapath stage")))
}

/// What the kernel reported for one loaded program.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct ProgramStat {
    pub name: &'static str,
    /// Instructions the verifier processed (`verified_insns`), when the kernel reports it.
    pub verified_insns: Option<u32>,
    /// Size of the translated (post-verifier) program in bytes.
    pub xlated_bytes: Option<u32>,
    /// The kernel accepted the object's license as GPL-compatible (GPL-only helpers usable).
    pub gpl_compatible: Option<bool>,
}

/// Result of one BPF_PROG_TEST_RUN of the entry program.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TestRun {
    /// The verdict as an XDP action (`abi::XDP_PASS`, `abi::XDP_DROP`); for a run of the tc chain its
    /// verdict translated (`TCX_NEXT` → `XDP_PASS`, `TC_ACT_SHOT` → `XDP_DROP`, anything else
    /// `u32::MAX`), so [`tailwall_compiler::outcome::Outcome::from_kernel`] decodes both chains.
    pub xdp_action: u32,
    /// The program's return value as the kernel reported it (an XDP action, or a tc verdict).
    pub retval: i32,
    /// `tw_decision` of the CPU the program ran on, after the (last) run.
    pub decision: abi::Decision,
    /// `tw_pkt` of that CPU after the run: what the entry program parsed and decided (the hook, the
    /// interfaces); stale when the entry program stopped before writing it (not IPv4, malformed).
    pub pkt: abi::PktCtx,
    /// Mean time of one run in nanoseconds, as the kernel measured it.
    pub duration_ns: u32,
    /// The frame as the program left it (`data_out`): for `XDP_TX`, the REJECT reply it sends.
    pub out: Vec<u8>,
    /// `tw_decision[DECISION_REPLY]`: the decision on the last REJECT reply judged at OUTPUT on
    /// that CPU (stale unless this run built one).
    pub reply_decision: abi::Decision,
}

/// A loaded generation (see the module docs).
pub struct Generation {
    ebpf: Ebpf,
    maps: BTreeMap<&'static str, Map>,
    /// Programs at prog-array indices `0..=nstages`.
    chain: Vec<&'static str>,
    /// The tc chain's programs at `tw_progs_tc` indices `0..=nstages`.
    tc_chain: Vec<&'static str>,
    nrules: u32,
    digest: String,
    load_time: Duration,
    /// The namespace's devices the interface tables were filled from (`(ifindex, name)`).
    devices: Vec<(u32, String)>,
}

fn map_data(map: &Map) -> Option<&MapData> {
    match map {
        Map::Array(d)
        | Map::PerCpuArray(d)
        | Map::LpmTrie(d)
        | Map::ProgramArray(d)
        | Map::HashMap(d) => Some(d),
        _ => None,
    }
}

/// The artifact contract ([`Layout::check`], the same check `sim` runs), as a load error.
fn check(artifact: &Artifact) -> Result<Layout, LoadError> {
    Layout::check(artifact).map_err(|e| match e {
        LayoutError::AbiVersion { found, expected } => LoadError::AbiVersion { found, expected },
        other => LoadError::Artifact(other.to_string()),
    })
}

/// `max_entries` of `name` in this generation.
fn max_entries(artifact: &Artifact, name: &'static str) -> u32 {
    let g = &artifact.globals;
    if name == abi::MAP_PROGS_TC {
        // Not an artifact image: the tc chain mirrors `tw_progs`.
        return g.nstages + 1;
    }
    if name == abi::MAP_PROGS {
        // The stages, `tw_final`, then `tw_reject` (the artifact describes no programs).
        return g.nstages + 2;
    }
    match artifact.map(name) {
        Some(m) => m.max_entries,
        None if name == abi::MAP_SCRATCH => g.nchunks.max(1),
        None if name == abi::MAP_RULES || name == abi::MAP_RULE_CNT => g.nrules.max(1),
        None if name == abi::MAP_REASONS => abi::REASON_SLOTS,
        None if name == abi::MAP_LOG => abi::LOG_RING_BYTES,
        None if name == abi::MAP_LOG_LOST => abi::LOG_LOST_SLOTS,
        None if name == abi::MAP_DECISION => 2,
        // tw_pkt, and the maps of unused stages.
        None => 1,
    }
}

/// The TTL and hop limit of the replies REJECT builds, as the kernel's replies get them: the
/// namespace's `net.ipv4.ip_default_ttl` and `net.ipv6.conf.default.hop_limit` (read at load; 64
/// each when unreadable, the kernel's defaults). A route's own `hoplimit` metric is not read.
pub fn reply_hop_limits() -> (u32, u32) {
    let read = |path: &str| {
        std::fs::read_to_string(path)
            .ok()
            .and_then(|s| s.trim().parse::<u32>().ok())
            .filter(|v| (1..=255).contains(v))
            .unwrap_or(64)
    };
    (
        read("/proc/sys/net/ipv4/ip_default_ttl"),
        read("/proc/sys/net/ipv6/conf/default/hop_limit"),
    )
}

/// Which devices [`Generation::load_with`] writes into the interface tables.
#[derive(Clone, Copy)]
enum Devices {
    /// Every device of the namespace, under its name.
    Namespace,
    /// The loopback device alone, under the empty name (no device).
    NamelessLoopback,
}

/// The programs loaded besides the chain: the attached entry (hook from the FIB), the test-run
/// entries with a fixed hook, and the empty baseline.
const ENTRIES: [&str; 4] = [
    abi::PROG_ENTRY,
    abi::PROG_ENTRY_INPUT,
    abi::PROG_ENTRY_FORWARD,
    abi::PROG_PASS,
];

/// The tc programs loaded besides the tc chain: the entry attached at tcx egress.
const TC_ENTRIES: [&str; 1] = [abi::PROG_EGRESS];

fn load_xdp(ebpf: &mut Ebpf, name: &'static str) -> Result<(), LoadError> {
    let prog: &mut Xdp = ebpf
        .program_mut(name)
        .ok_or(LoadError::MissingProgram { program: name })?
        .try_into()
        .map_err(prog_err(name))?;
    prog.load().map_err(verifier(name))
}

fn load_tc(ebpf: &mut Ebpf, name: &'static str) -> Result<(), LoadError> {
    let prog: &mut SchedClassifier = ebpf
        .program_mut(name)
        .ok_or(LoadError::MissingProgram { program: name })?
        .try_into()
        .map_err(prog_err(name))?;
    prog.load().map_err(verifier(name))
}

/// A program load error, with the verifier's log when the verifier refused it.
fn verifier(name: &'static str) -> impl FnOnce(ProgramError) -> LoadError {
    move |e| match e {
        ProgramError::LoadError {
            io_error,
            verifier_log,
        } => LoadError::Verifier {
            program: name,
            log: verifier_log.to_string(),
            source: io_error,
        },
        other => prog_err(name)(other),
    }
}

impl Generation {
    /// Load `artifact` into the kernel (see the module docs). Not attached anywhere. The interface
    /// tables hold every device of the calling thread's network namespace (`if_nameindex(3)`) with
    /// its name's class.
    pub fn load(artifact: &Artifact) -> Result<Generation, LoadError> {
        Generation::load_with(artifact, Devices::Namespace)
    }

    /// As [`Generation::load`], for test-runs of frames that carry no interface (`tailwall replay
    /// --engine kernel`, the corpus' kernel engine): BPF_PROG_TEST_RUN frames arrive on (XDP) and
    /// leave by (tc) the namespace's loopback device, so the interface tables give `lo` the class of
    /// the empty name (no device) — the judgement `interp` and `sim` give a packet without
    /// interfaces ([`tailwall_compiler::interp::Meta::default`]). Never attach such a generation.
    pub fn load_nameless(artifact: &Artifact) -> Result<Generation, LoadError> {
        Generation::load_with(artifact, Devices::NamelessLoopback)
    }

    fn load_with(artifact: &Artifact, names: Devices) -> Result<Generation, LoadError> {
        let layout = check(artifact)?;
        let start = Instant::now();
        let g = artifact.globals;
        let (reply_ttl, reply_hl) = reply_hop_limits();
        let mut loader = EbpfLoader::new();
        loader
            .override_global(abi::GLOBAL_NCHUNKS, &g.nchunks, true)
            .override_global(abi::GLOBAL_NSTAGES, &g.nstages, true)
            .override_global(abi::GLOBAL_NRULES, &g.nrules, true)
            .override_global(abi::GLOBAL_NVISITS, &g.nvisits, true)
            .override_global(abi::GLOBAL_REPLY_TTL, &reply_ttl, true)
            .override_global(abi::GLOBAL_REPLY_HL, &reply_hl, true);
        // ct_state: the conntrack kfuncs of the running kernel, or a refusal when the ruleset needs
        // them (`docs/decisions/0014`).
        let ct = artifact
            .stages
            .contains(&tailwall_compiler::ir::Field::CtState);
        let kfuncs = match (Kfuncs::kernel(), ct) {
            (Ok(k), _) => Some(k),
            (Err(e), true) => return Err(LoadError::Conntrack(e)),
            (Err(_), false) => None,
        };
        let ct_flag = u32::from(ct);
        let status = kfuncs.map_or(0, |k| k.status_offset);
        loader
            .override_global(abi::GLOBAL_CT, &ct_flag, true)
            .override_global(abi::GLOBAL_CT_STATUS, &status, true);
        let (object, _) = kfunc::patch(OBJECT, kfuncs.as_ref()).map_err(LoadError::Artifact)?;
        for (name, ..) in object_maps() {
            loader.map_max_entries(name, max_entries(artifact, name));
        }
        let mut ebpf = loader.load(object.bytes()).map_err(|e| match e {
            aya::EbpfError::MapError(aya::maps::MapError::CreateError { name, io_error }) => {
                LoadError::MapCreate {
                    map: name,
                    source: io_error,
                }
            }
            e => LoadError::Object(Box::new(e)),
        })?;

        let mut chain: Vec<&'static str> = artifact
            .stages
            .iter()
            .map(|f| stage_row(*f).map(|r| r.prog))
            .collect::<Result<_, _>>()?;
        chain.push(abi::PROG_FINAL);
        // A REJECT's reply is built by `tw_reject` at `TW_NSTAGES + 1` (`docs/decisions/0015-reject.md`).
        chain.push(abi::PROG_REJECT);
        for name in chain.iter().copied().chain(ENTRIES) {
            load_xdp(&mut ebpf, name)?;
        }
        let mut tc_chain: Vec<&'static str> = artifact
            .stages
            .iter()
            .map(|f| stage_row(*f).map(|r| r.tc_prog))
            .collect::<Result<_, _>>()?;
        tc_chain.push(abi::PROG_FINAL_TC);
        for name in tc_chain.iter().copied().chain(TC_ENTRIES) {
            load_tc(&mut ebpf, name)?;
        }

        let mut maps = BTreeMap::new();
        for (name, ..) in object_maps() {
            let map = ebpf
                .take_map(name)
                .ok_or(LoadError::MissingMap { map: name })?;
            maps.insert(name, map);
        }
        for image in &artifact.maps {
            if image.entries.is_empty() {
                continue;
            }
            let map = maps
                .get(image.name)
                .and_then(map_data)
                .ok_or(LoadError::MissingMap { map: image.name })?;
            fill(map.fd().as_fd(), image).map_err(sys(image.name))?;
        }
        // The interface tables: every device of the namespace with its name's class
        // (`docs/decisions/0010`); a device created later misses and is dropped, counted.
        let devices = if layout
            .stages
            .iter()
            .any(|s| s.row.table == abi::TableKind::Hash)
        {
            let all = raw::devices().map_err(sys("if_nameindex"))?;
            match names {
                Devices::Namespace => all,
                Devices::NamelessLoopback => all
                    .into_iter()
                    .filter(|(_, n)| n == "lo")
                    .map(|(i, _)| (i, String::new()))
                    .collect(),
            }
        } else {
            Vec::new()
        };
        if devices.len() >= abi::MAX_IFACES as usize {
            return Err(LoadError::Artifact(format!(
                "the network namespace has {} devices; the interface tables hold at most {}",
                devices.len(),
                abi::MAX_IFACES - 1
            )));
        }
        for stage in &layout.stages {
            let entries = stage.iface_entries(&devices);
            if entries.is_empty() {
                continue;
            }
            let name = stage.row.table_map;
            let map = maps
                .get(name)
                .and_then(map_data)
                .ok_or(LoadError::MissingMap { map: name })?;
            for (ifindex, class) in entries {
                raw::map_update(
                    map.fd().as_fd(),
                    &ifindex.to_le_bytes(),
                    &class.to_le_bytes(),
                )
                .map_err(sys(name))?;
            }
        }

        for (array, programs) in [(abi::MAP_PROGS, &chain), (abi::MAP_PROGS_TC, &tc_chain)] {
            let mut progs: ProgramArray<&mut MapData> =
                ProgramArray::try_from(maps.get_mut(array).expect("taken above"))
                    .map_err(map_err(array))?;
            for (i, name) in programs.iter().enumerate() {
                let fd = ebpf
                    .program(name)
                    .expect("loaded above")
                    .fd()
                    .map_err(prog_err(name))?;
                progs.set(i as u32, fd, 0).map_err(map_err(array))?;
            }
        }

        Ok(Generation {
            ebpf,
            maps,
            chain,
            tc_chain,
            nrules: g.nrules,
            digest: artifact.digest.clone(),
            load_time: start.elapsed(),
            devices,
        })
    }

    /// The network devices the interface tables were filled from (`(ifindex, name)`; empty when
    /// the generation has no interface stage).
    pub fn devices(&self) -> &[(u32, String)] {
        &self.devices
    }

    /// The artifact digest this generation was loaded from.
    pub fn digest(&self) -> &str {
        &self.digest
    }

    /// Wall time of [`Generation::load`] (object load, verifier, map fill, wiring).
    pub fn load_time(&self) -> Duration {
        self.load_time
    }

    /// Programs at prog-array indices `0..=nstages` (the stages in plan order, then `tw_final`).
    pub fn chain(&self) -> &[&'static str] {
        &self.chain
    }

    /// The tc chain's programs at `tw_progs_tc` indices `0..=nstages` (the `tw_c_<field>` stages in
    /// plan order, then `tw_final_tc`).
    pub fn tc_chain(&self) -> &[&'static str] {
        &self.tc_chain
    }

    /// Verifier statistics of every loaded program: the chain, then the entry programs and `tw_pass`,
    /// then the tc chain and `tw_egress`.
    pub fn program_stats(&self) -> Result<Vec<ProgramStat>, LoadError> {
        let mut out = Vec::new();
        let xdp = self.chain.iter().copied().chain(ENTRIES);
        let tc = self.tc_chain.iter().copied().chain(TC_ENTRIES);
        for name in xdp.chain(tc) {
            let info = self
                .ebpf
                .program(name)
                .ok_or(LoadError::MissingProgram { program: name })?
                .info()
                .map_err(prog_err(name))?;
            out.push(ProgramStat {
                name,
                verified_insns: info.verified_instruction_count(),
                xlated_bytes: info.size_translated(),
                gpl_compatible: info.gpl_compatible(),
            });
        }
        Ok(out)
    }

    pub(crate) fn xdp(&self, name: &'static str) -> Result<&Xdp, LoadError> {
        self.ebpf
            .program(name)
            .ok_or(LoadError::MissingProgram { program: name })?
            .try_into()
            .map_err(prog_err(name))
    }

    pub(crate) fn xdp_mut(&mut self, name: &'static str) -> Result<&mut Xdp, LoadError> {
        self.ebpf
            .program_mut(name)
            .ok_or(LoadError::MissingProgram { program: name })?
            .try_into()
            .map_err(prog_err(name))
    }

    /// The tc program `name` of this generation (`tw_egress`, for pinning and attaching at tcx egress).
    pub(crate) fn tc_mut(&mut self, name: &'static str) -> Result<&mut SchedClassifier, LoadError> {
        self.ebpf
            .program_mut(name)
            .ok_or(LoadError::MissingProgram { program: name })?
            .try_into()
            .map_err(prog_err(name))
    }

    /// One of this generation's maps by its `tailwall_abi` `MAP_*` name (`tw_log`, `tw_log_lost`,
    /// `tw_monitor`, …) for `crate::logring`; `None` for a name the object does not have.
    pub fn abi_map(&self, name: &str) -> Option<&Map> {
        self.maps.get(name)
    }

    /// [`Generation::abi_map`], writable (the monitor's switch).
    pub fn abi_map_mut(&mut self, name: &str) -> Option<&mut Map> {
        self.maps.get_mut(name)
    }

    pub(crate) fn map(&self, name: &'static str) -> &Map {
        self.maps.get(name).expect("every abi map is taken at load")
    }

    pub(crate) fn map_mut(&mut self, name: &'static str) -> &mut Map {
        self.maps
            .get_mut(name)
            .expect("every abi map is taken at load")
    }

    /// The fd of one of this generation's maps (any `tailwall_abi` `MAP_*` name), for inspection and
    /// fault-injection tests; `None` for a name the object does not have.
    pub fn map_fd(&self, name: &str) -> Option<BorrowedFd<'_>> {
        self.maps
            .get(name)
            .and_then(map_data)
            .map(|d| d.fd().as_fd())
    }

    /// The entry program's fd (for [`crate::test_run_live`]).
    pub fn entry_fd(&self) -> Result<BorrowedFd<'_>, LoadError> {
        Ok(self
            .xdp(abi::PROG_ENTRY)?
            .fd()
            .map_err(prog_err(abi::PROG_ENTRY))?
            .as_fd())
    }

    /// The empty XDP program's fd (`tw_pass`, returns `XDP_PASS`): the benchmark baseline.
    pub fn pass_fd(&self) -> Result<BorrowedFd<'_>, LoadError> {
        Ok(self
            .xdp(abi::PROG_PASS)?
            .fd()
            .map_err(prog_err(abi::PROG_PASS))?
            .as_fd())
    }

    /// Run `frame` through the entry program with the hook fixed to INPUT (`tw_entry_in`) `repeat`
    /// times with BPF_PROG_TEST_RUN and read back the decision of the CPU it ran on. The thread is
    /// pinned to its CPU for the run. Counters count every repetition.
    pub fn test_run(&self, frame: &[u8], repeat: u32) -> Result<TestRun, LoadError> {
        self.run_prog(abi::PROG_ENTRY_INPUT, frame, repeat, None)
    }

    /// Run `frame` `repeat` times through the program that judges it at `hook`, as
    /// [`Generation::test_run`]: `tw_entry_in` (INPUT) or `tw_entry_fwd` (FORWARD, egress interface
    /// unknown) — the XDP entry with the FIB's decision fixed — or the tc egress chain `tw_egress`
    /// (OUTPUT, [`Generation::test_run_egress`]).
    pub fn test_run_at(
        &self,
        frame: &[u8],
        hook: tailwall_compiler::ir::Hook,
        repeat: u32,
    ) -> Result<TestRun, LoadError> {
        use tailwall_compiler::ir::Hook;
        let prog = match hook {
            Hook::Input => abi::PROG_ENTRY_INPUT,
            Hook::Forward => abi::PROG_ENTRY_FORWARD,
            Hook::Output => abi::PROG_EGRESS,
        };
        self.run_prog(prog, frame, repeat, None)
    }

    /// Run `frame` `repeat` times through the attached entry program `tw_entry` as if received on
    /// interface `ifindex` of the calling thread's network namespace: the hook and egress interface
    /// come from that namespace's FIB ([`TestRun::pkt`]).
    pub fn test_run_fib(
        &self,
        frame: &[u8],
        ifindex: u32,
        repeat: u32,
    ) -> Result<TestRun, LoadError> {
        self.run_prog(abi::PROG_ENTRY, frame, repeat, Some(ifindex))
    }

    /// As [`Generation::test_run_fib`] through `tw_entry_in` (the same program with the hook fixed,
    /// no FIB lookup): the baseline of the lookup's cost.
    pub fn test_run_fixed_on(
        &self,
        frame: &[u8],
        ifindex: u32,
        repeat: u32,
    ) -> Result<TestRun, LoadError> {
        self.run_prog(abi::PROG_ENTRY_INPUT, frame, repeat, Some(ifindex))
    }

    /// Run `frame` `repeat` times through the tc egress chain (`tw_egress`: the OUTPUT region of the
    /// frame's family) with BPF_PROG_TEST_RUN, as [`Generation::test_run`]. The test-run skb leaves by
    /// the loopback device and has a socket (a locally generated packet).
    pub fn test_run_egress(&self, frame: &[u8], repeat: u32) -> Result<TestRun, LoadError> {
        self.run_prog(abi::PROG_EGRESS, frame, repeat, None)
    }

    /// As [`Generation::test_run`], on the empty program `tw_pass` (decision left untouched).
    pub fn test_run_pass(&self, frame: &[u8], repeat: u32) -> Result<TestRun, LoadError> {
        self.run_prog(abi::PROG_PASS, frame, repeat, None)
    }

    /// As [`Generation::test_run`], on the verdict program `tw_final` alone: it decides from the
    /// per-CPU packet context and scratch vector the previous run on this CPU left (run
    /// [`Generation::test_run`] on the same frame first). The benchmark's split of the per-packet cost.
    pub fn test_run_final(&self, frame: &[u8], repeat: u32) -> Result<TestRun, LoadError> {
        self.run_prog(abi::PROG_FINAL, frame, repeat, None)
    }

    fn run_prog(
        &self,
        prog: &'static str,
        frame: &[u8],
        repeat: u32,
        ifindex: Option<u32>,
    ) -> Result<TestRun, LoadError> {
        if frame.len() < 14 {
            return Err(LoadError::FrameTooShort(frame.len()));
        }
        let program = self
            .ebpf
            .program(prog)
            .ok_or(LoadError::MissingProgram { program: prog })?;
        let tc = matches!(program, aya::programs::Program::SchedClassifier(_));
        let fd = program.fd().map_err(prog_err(prog))?.as_fd();
        let pin = raw::CpuPin::current().map_err(sys("sched_setaffinity"))?;
        let ctx = raw::XdpMd {
            data_end: frame.len() as u32,
            ingress_ifindex: ifindex.unwrap_or(0),
            ..Default::default()
        };
        // Room for the frame grown by a REJECT's ICMP headers.
        let mut out = vec![0u8; frame.len() + abi::REPLY_BUF_LEN];
        let mut attr = raw::TestRunAttr {
            data_in: frame.as_ptr() as u64,
            data_size_in: frame.len() as u32,
            data_out: out.as_mut_ptr() as u64,
            data_size_out: out.len() as u32,
            repeat: repeat.max(1),
            ..Default::default()
        };
        if ifindex.is_some() && !tc {
            attr.ctx_in = &ctx as *const raw::XdpMd as u64;
            attr.ctx_size_in = std::mem::size_of::<raw::XdpMd>() as u32;
        }
        let (retval, duration_ns) =
            raw::prog_test_run(&mut attr, fd).map_err(sys("BPF_PROG_TEST_RUN"))?;
        let retval = retval as i32;
        let xdp_action = match (tc, retval) {
            (false, r) => r as u32,
            (true, abi::TCX_NEXT) => abi::XDP_PASS,
            (true, abi::TC_ACT_SHOT) => abi::XDP_DROP,
            (true, _) => u32::MAX,
        };
        let decisions: PerCpuArray<&MapData, abi::Decision> =
            PerCpuArray::try_from(self.map(abi::MAP_DECISION))
                .map_err(map_err(abi::MAP_DECISION))?;
        let per_cpu = decisions.get(&0, 0).map_err(map_err(abi::MAP_DECISION))?;
        let decision = per_cpu.get(pin.cpu).copied().unwrap_or_default();
        let reply_decision = decisions
            .get(&abi::DECISION_REPLY, 0)
            .map_err(map_err(abi::MAP_DECISION))?
            .get(pin.cpu)
            .copied()
            .unwrap_or_default();
        out.truncate((attr.data_size_out as usize).min(out.len()));
        let pkts: PerCpuArray<&MapData, abi::PktCtx> =
            PerCpuArray::try_from(self.map(abi::MAP_PKT)).map_err(map_err(abi::MAP_PKT))?;
        let pkt = pkts
            .get(&0, 0)
            .map_err(map_err(abi::MAP_PKT))?
            .get(pin.cpu)
            .copied()
            .unwrap_or_default();
        drop(pin);
        Ok(TestRun {
            xdp_action,
            retval,
            decision,
            pkt,
            duration_ns,
            out,
            reply_decision,
        })
    }

    /// Run probe frames through the generation at every hook ([`Generation::test_run_at`]) and check
    /// each verdict and deciding rule against `sim` at that hook on the same artifact, then zero the
    /// counter slots the probes touched. Catches a mis-wired chain before it goes live; `attach` runs
    /// it before the flip.
    pub fn self_test(&mut self, artifact: &Artifact) -> Result<(), LoadError> {
        use tailwall_compiler::{outcome::Outcome, packet, sim::Sim};
        // Test-run frames arrive on the namespace's loopback device (BPF_PROG_TEST_RUN's default
        // ingress), judged with the interface tables this generation was filled with.
        let sim = Sim::new(artifact)
            .map_err(|e| LoadError::Artifact(e.to_string()))?
            .with_devices(self.devices.clone());
        let lo = tailwall_compiler::interp::Meta {
            in_iface: Some("lo".into()),
            out_iface: None,
        };
        let (a, b) = (
            std::net::Ipv4Addr::new(10, 0, 0, 1),
            std::net::Ipv4Addr::new(10, 0, 0, 2),
        );
        let mac = [2, 0, 0, 0, 0, 1];
        let (a6, b6): (std::net::Ipv6Addr, std::net::Ipv6Addr) = (
            std::net::Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, 1),
            std::net::Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, 2),
        );
        let probes = [
            // IPv6: judged in the IPv6 region, or passed as the other family.
            packet::build_frame_v6(
                mac,
                mac,
                a6,
                b6,
                packet::IPPROTO_TCP,
                &packet::l4_header(packet::IPPROTO_TCP, 40000, 22, b""),
            ),
            packet::build_frame_v6(
                mac,
                mac,
                b6,
                a6,
                packet::IPPROTO_ICMPV6,
                &[128, 0, 0, 0, 0, 0, 0, 0],
            ),
            packet::build_frame(
                mac,
                mac,
                a,
                b,
                packet::IPPROTO_TCP,
                0,
                &packet::l4_header(packet::IPPROTO_TCP, 40000, 80, b""),
            ),
            packet::build_frame(
                mac,
                mac,
                b,
                a,
                packet::IPPROTO_UDP,
                0,
                &packet::l4_header(packet::IPPROTO_UDP, 53, 53, b""),
            ),
            packet::build_frame(
                mac,
                mac,
                a,
                b,
                packet::IPPROTO_ICMP,
                0,
                &[8, 0, 0, 0, 0, 0, 0, 0],
            ),
        ];
        // Every probe at every hook's program (the FIB picks INPUT or FORWARD per packet, tc egress
        // judges OUTPUT). The walk counts every position it visits, all within the probed region up
        // to the deciding position: zero that range afterwards.
        let mut touched_rules: Vec<u32> = Vec::new();
        let mut touched_reasons = Vec::new();
        for hook in tailwall_compiler::ir::Hook::ALL {
            for frame in &probes {
                // The hook's region of the frame's family.
                let family = match packet::decode(frame) {
                    packet::Decoded::Ipv6(_) => tailwall_compiler::ir::Family::V6,
                    _ => tailwall_compiler::ir::Family::V4,
                };
                let region = artifact
                    .region(hook, family)
                    .map_or(0..0, |r| r.first..r.end);
                let tr = self.test_run_at(frame, hook, 1)?;
                // Test-run frames arrive on `lo`; the forced FORWARD entry has no output device (no
                // FIB lookup), the tc test-run's skb leaves by `lo` (no input device at OUTPUT).
                let meta = tailwall_compiler::interp::Meta {
                    out_iface: (hook == tailwall_compiler::ir::Hook::Output).then(|| "lo".into()),
                    ..lo.clone()
                };
                let want = sim.run_with(
                    tailwall_compiler::flatten::region_slot(hook, family),
                    &meta,
                    &packet::decode(frame),
                );
                let got = Outcome::from_kernel(artifact, tr.xdp_action, &tr.decision);
                if got.as_ref() != Ok(&want) {
                    return Err(LoadError::SelfTest(format!(
                        "probe {} at {}: kernel returned xdp action {} (decision {:?}: {got:?}), the model says {:?}",
                        describe(frame),
                        hook.chain_name(),
                        tr.xdp_action,
                        tr.decision,
                        want
                    )));
                }
                let upto = if region.contains(&tr.decision.rule) {
                    tr.decision.rule + 1
                } else {
                    region.end
                };
                touched_rules.extend(region.start..upto);
                if tr.decision.reason != abi::REASON_RULE {
                    touched_reasons.push(tr.decision.reason);
                }
                if tr.decision.action == abi::ACTION_REJECT {
                    // The reply was judged at OUTPUT (`tw_reject`): that region and the reasons a
                    // reply counts in.
                    let out = artifact
                        .region(tailwall_compiler::ir::Hook::Output, family)
                        .map_or(0..0, |r| r.first..r.end);
                    touched_rules.extend(out);
                    touched_reasons.extend([
                        abi::REASON_POLICY,
                        abi::REASON_REJECT_SILENT,
                        abi::REASON_REJECT_FAIL,
                        abi::REASON_REPLY_SENT,
                    ]);
                    if tr.reply_decision.reason < abi::REASON_SLOTS {
                        touched_reasons.push(tr.reply_decision.reason);
                    }
                }
            }
        }
        touched_rules.sort_unstable();
        touched_rules.dedup();
        zero_counters(
            self.map_mut(abi::MAP_RULE_CNT),
            abi::MAP_RULE_CNT,
            &touched_rules,
        )?;
        zero_counters(
            self.map_mut(abi::MAP_REASONS),
            abi::MAP_REASONS,
            &touched_reasons,
        )
    }

    /// Per-position packet/byte counters, summed over CPUs, indexed by position (sum them per rule
    /// with [`Artifact::origin_counters`]).
    pub fn rule_counters(&self) -> Result<Vec<abi::Counter>, LoadError> {
        let mut v = read_counters(self.map(abi::MAP_RULE_CNT), abi::MAP_RULE_CNT)?;
        v.truncate(self.nrules as usize);
        Ok(v)
    }

    /// `tw_reasons` summed over CPUs, indexed by `REASON_*` slot.
    pub fn reason_counters(&self) -> Result<Vec<abi::Counter>, LoadError> {
        read_counters(self.map(abi::MAP_REASONS), abi::MAP_REASONS)
    }
}

/// Read a per-CPU `Counter` array, summing each slot over CPUs.
pub(crate) fn read_counters(map: &Map, name: &'static str) -> Result<Vec<abi::Counter>, LoadError> {
    let arr: PerCpuArray<&MapData, abi::Counter> =
        PerCpuArray::try_from(map).map_err(map_err(name))?;
    let data = map_data(map).ok_or(LoadError::MissingMap { map: name })?;
    let ncpus = aya::util::nr_cpus().map_err(|(_, e)| sys("reading possible cpus")(e))?;
    // `Counter` is two u64: its per-CPU slot is already a multiple of 8 bytes.
    const SLOT: usize = std::mem::size_of::<abi::Counter>();
    match crate::sys::array_lookup_all(data.fd().as_fd(), arr.len(), SLOT * ncpus) {
        Ok(values) => {
            return Ok(values
                .chunks_exact(SLOT * ncpus)
                .map(|per_cpu| {
                    per_cpu
                        .chunks_exact(SLOT)
                        .fold(abi::Counter::default(), |a, c| abi::Counter {
                            packets: a.packets
                                + u64::from_ne_bytes(c[0..8].try_into().expect("8 bytes")),
                            bytes: a.bytes
                                + u64::from_ne_bytes(c[8..16].try_into().expect("8 bytes")),
                        })
                })
                .collect())
        }
        // No batch operations on this kernel: one lookup per key.
        Err(e) if e.raw_os_error() == Some(libc::EINVAL) => {}
        Err(e) => return Err(sys("BPF_MAP_LOOKUP_BATCH")(e)),
    }
    read_counters_by_key(&arr, name)
}

/// [`read_counters`] one key at a time (kernels without batch lookups; and the tests' reference).
fn read_counters_by_key(
    arr: &PerCpuArray<&MapData, abi::Counter>,
    name: &'static str,
) -> Result<Vec<abi::Counter>, LoadError> {
    let mut out = Vec::with_capacity(arr.len() as usize);
    for i in 0..arr.len() {
        let per_cpu = arr.get(&i, 0).map_err(map_err(name))?;
        out.push(
            per_cpu
                .iter()
                .fold(abi::Counter::default(), |a, c| abi::Counter {
                    packets: a.packets + c.packets,
                    bytes: a.bytes + c.bytes,
                }),
        );
    }
    Ok(out)
}

fn describe(frame: &[u8]) -> String {
    tailwall_compiler::packet::decode(frame).to_string()
}

/// Zero the given slots of a per-CPU `Counter` array on every CPU.
fn zero_counters(map: &mut Map, name: &'static str, slots: &[u32]) -> Result<(), LoadError> {
    let mut arr: PerCpuArray<&mut MapData, abi::Counter> =
        PerCpuArray::try_from(map).map_err(map_err(name))?;
    let ncpus = aya::util::nr_cpus().map_err(|(_, e)| sys("reading possible cpus")(e))?;
    for &i in slots {
        let zeros = aya::maps::PerCpuValues::try_from(vec![abi::Counter::default(); ncpus])
            .map_err(sys("per-cpu counter reset"))?;
        arr.set(i, zeros, 0).map_err(map_err(name))?;
    }
    Ok(())
}

/// Write a map image: arrays in batches (falling back to single updates), LPM tries entry by entry.
fn fill(fd: BorrowedFd<'_>, image: &tailwall_compiler::artifact::MapImage) -> std::io::Result<()> {
    use tailwall_compiler::artifact::MapKind;
    if image.kind == MapKind::Array {
        let keys: Vec<u8> = image
            .entries
            .iter()
            .flat_map(|(k, _)| k.iter().copied())
            .collect();
        let values: Vec<u8> = image
            .entries
            .iter()
            .flat_map(|(_, v)| v.iter().copied())
            .collect();
        match raw::map_update_batch(fd, &keys, &values, image.entries.len() as u32) {
            Ok(()) => return Ok(()),
            // Batch ops unsupported: EINVAL, EOPNOTSUPP, or the kernel-internal ENOTSUPP (524).
            Err(e)
                if matches!(
                    e.raw_os_error(),
                    Some(libc::EINVAL | libc::EOPNOTSUPP | 524)
                ) => {}
            Err(e) => return Err(e),
        }
    }
    for (k, v) in &image.entries {
        raw::map_update(fd, k, v)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use tailwall_compiler::packet::{build_frame, l4_header, IPPROTO_UDP};

    /// The batch read of the per-CPU counters (BPF_MAP_LOOKUP_BATCH) gives what one lookup per key
    /// gives, summed over CPUs. Root (loads into the kernel); skipped otherwise.
    #[test]
    fn batch_counter_reads_equal_per_key_reads() {
        // SAFETY: geteuid has no preconditions.
        if unsafe { libc::geteuid() } != 0 {
            eprintln!("batch counters: skipped: not root");
            return;
        }
        let mut text = String::from("*filter\n:INPUT ACCEPT [0:0]\n");
        for p in 0..300 {
            text.push_str(&format!("-A INPUT -p udp --dport {} -j DROP\n", 7000 + p));
        }
        text.push_str("COMMIT\n");
        let src = tailwall_compiler::diag::SourceFile::new("batch.rules", text);
        let rs = tailwall_compiler::frontend::load(&src)
            .unwrap_or_else(|d| panic!("{d:?}"))
            .ruleset;
        let art = tailwall_compiler::artifact::build(&rs, tailwall_compiler::ir::Hook::Input)
            .expect("build");
        let gen = Generation::load(&art).expect("load");
        let frame = |port: u16| {
            build_frame(
                [2; 6],
                [4; 6],
                "10.0.0.2".parse().expect("ip"),
                "10.0.0.1".parse().expect("ip"),
                IPPROTO_UDP,
                0,
                &l4_header(IPPROTO_UDP, 40000, port, b"tw"),
            )
        };
        for (port, n) in [(7000u16, 3u32), (7150, 5), (7299, 7), (9000, 2)] {
            gen.test_run(&frame(port), n).expect("test run");
        }
        let ncpus = aya::util::nr_cpus().expect("cpus");
        let map = map_data(gen.map(abi::MAP_RULE_CNT)).expect("map data");
        crate::sys::array_lookup_all(map.fd().as_fd(), 300, 16 * ncpus)
            .expect("BPF_MAP_LOOKUP_BATCH on a per-CPU array (Linux >= 5.6)");
        for name in [abi::MAP_RULE_CNT, abi::MAP_REASONS] {
            let map = gen.map(name);
            let batch = read_counters(map, name).expect("batch read");
            let arr: PerCpuArray<&MapData, abi::Counter> =
                PerCpuArray::try_from(map).expect("per-cpu array");
            let by_key = read_counters_by_key(&arr, name).expect("per-key read");
            assert_eq!(batch, by_key, "{name}");
            assert!(
                batch.iter().any(|c| c.packets > 0),
                "{name}: nothing counted"
            );
        }
        let rules = read_counters(gen.map(abi::MAP_RULE_CNT), abi::MAP_RULE_CNT).expect("read");
        assert_eq!(
            (rules[0].packets, rules[150].packets, rules[299].packets),
            (3, 5, 7)
        );
    }
}
