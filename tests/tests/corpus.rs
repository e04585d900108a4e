//! Every case of the shared corpus (`tests/corpus/*.yaml`, see `tailwall_tests::corpus`) through every
//! engine: `interp` and `sim` always, the kernel (BPF_PROG_TEST_RUN) when root. One report lists every
//! difference of every engine.
use tailwall_compiler::{
    artifact,
    interp::{Interp, Meta},
    ir::Hook,
    outcome::Engine,
    sim::Sim,
};
use tailwall_loader::{Generation, KernelEngine};
use tailwall_tests::{corpus, netns};

#[test]
fn corpus_every_engine_agrees_with_the_expected_outcome() {
    let cases = corpus::load_all().unwrap_or_else(|e| panic!("{e:#}"));
    assert!(cases.len() >= 8, "the corpus lost cases: {}", cases.len());
    let kernel = netns::require_root_or_skip("corpus (kernel engine)");
    let mut failures = Vec::new();
    let mut runs = 0;
    for case in &cases {
        let name = case.path.file_name().unwrap().to_string_lossy().to_string();
        let art = artifact::build(&case.ruleset, Hook::Input);
        let generation;
        let mut engines: Vec<Box<dyn Engine + '_>> = vec![Box::new(Interp {
            rs: &case.ruleset,
            hook: Hook::Input,
            meta: Meta::default(),
        })];
        match (&art, case.datapath) {
            (Ok(a), true) => {
                engines.push(Box::new(Sim::new(a).expect("sim accepts the artifact")));
                if kernel {
                    // Frames without interfaces, as `Interp` with `Meta::default()`.
                    generation = Generation::load_nameless(a).expect("load the generation");
                    engines.push(Box::new(KernelEngine {
                        generation: &generation,
                        artifact: a,
                    }));
                }
            }
            (Err(e), true) => {
                failures.push(format!("{name}: the datapath refuses the ruleset: {e}"));
            }
            (Ok(_), false) => failures.push(format!(
                "{name}: the datapath compiles the ruleset now: remove `datapath: false`"
            )),
            (Err(_), false) => {}
        }
        // `logs:`: the log events of interp, sim and the kernel's ring buffer.
        if let (Ok(a), true) = (&art, case.datapath) {
            let sim = Sim::new(a).expect("sim accepts the artifact");
            let gen = kernel.then(|| Generation::load_nameless(a).expect("load the generation"));
            for p in case.probes.iter().filter(|p| p.logs.is_some()) {
                let want = p.logs.clone().unwrap_or_default();
                let d = tailwall_compiler::packet::decode(&p.frame);
                let name_of = |chain: tailwall_compiler::ir::ChainId, pos: u32| {
                    let c = case.ruleset.chain(chain).map_or("?", |c| c.name.as_str());
                    format!("{c} {pos}")
                };
                let (_, ev) = tailwall_compiler::interp::run_logged(
                    &case.ruleset,
                    Hook::Input,
                    &Meta::default(),
                    &d,
                );
                let mut got = vec![(
                    "interp",
                    ev.iter().map(|e| name_of(e.chain, e.position)).collect(),
                )];
                let mut sev = Vec::new();
                sim.run_logged(0, &Meta::default(), &d, &mut sev);
                got.push((
                    "sim",
                    sev.iter().map(|e| name_of(e.chain, e.position)).collect(),
                ));
                if let Some(g) = &gen {
                    g.test_run(&p.frame, 1).expect("test-run");
                    let mut ring = tailwall_loader::logring::ring(
                        g.abi_map(tailwall_abi::MAP_LOG).expect("tw_log"),
                    )
                    .expect("ring");
                    let mut k: Vec<String> = Vec::new();
                    while let Some(item) = ring.next() {
                        let r = tailwall_loader::logring::decode(&item).expect("record");
                        let info =
                            a.positions
                                .get(r.position as usize)
                                .and_then(|q| match q.origin {
                                    artifact::PositionOrigin::Rule(i) => a.rules.get(i as usize),
                                    _ => None,
                                });
                        k.push(info.map_or("?".into(), |ri| name_of(ri.chain_id, ri.position)));
                    }
                    got.push(("kernel", k));
                }
                for (engine, g) in got {
                    runs += 1;
                    if g != want {
                        failures.push(format!(
                            "{name} [{engine}] `{}`: logs {g:?}, expected {want:?}",
                            p.spec
                        ));
                    }
                }
            }
        }
        for engine in &mut engines {
            for p in &case.probes {
                runs += 1;
                let result = engine
                    .run_frame(&p.frame)
                    .map_err(|e| anyhow::anyhow!("{e}"))
                    .and_then(|o| corpus::check(&case.ruleset, &p.expect, &o));
                if let Err(e) = result {
                    failures.push(format!(
                        "{name} [{}] `{}`: {e:#}\n    ({})",
                        engine.name(),
                        p.spec,
                        case.about.trim()
                    ));
                }
            }
        }
    }
    eprintln!("corpus: {} cases, {runs} engine runs", cases.len());
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}
