//! LOG and NFLOG (issue 10 item 3): both front ends lower them to the non-terminal `Log` action,
//! `interp` and `sim` report the packet and go on with the next rule (`XT_CONTINUE`), the printers
//! give the rules back, `migrate` classifies them.
use std::net::Ipv4Addr;
use tailwall_compiler::artifact::build;
use tailwall_compiler::diag::SourceFile;
use tailwall_compiler::interp::{self, Decided, LogEvent, Meta};
use tailwall_compiler::ir::{ChainId, Hook, LogKind, RuleId, Verdict};
use tailwall_compiler::packet::{build_frame, decode, l4_header};
use tailwall_compiler::sim::Sim;
use tailwall_compiler::{lower, yaml};

const RULES: &str = "*filter\n:INPUT DROP [0:0]\n:FORWARD ACCEPT [0:0]\n:OUTPUT ACCEPT [0:0]\n:logdrop - [0:0]\n\
-A INPUT -p tcp -m tcp --dport 22 -j LOG --log-prefix \"ssh: \" --log-level 6 --log-tcp-sequence --log-tcp-options\n\
-A INPUT -p tcp -m tcp --dport 22 -j ACCEPT\n\
-A INPUT -p udp -j NFLOG --nflog-prefix udp --nflog-group 3\n\
-A INPUT -j logdrop\n\
-A logdrop -j LOG --log-prefix \"drop: \"\n\
-A logdrop -j DROP\n\
COMMIT\n";

fn frame(proto: u8, dport: u16) -> Vec<u8> {
    build_frame(
        [2, 0, 0, 0, 0, 1],
        [2, 0, 0, 0, 0, 2],
        Ipv4Addr::new(10, 0, 0, 2),
        Ipv4Addr::new(10, 0, 0, 1),
        proto,
        0,
        &l4_header(proto, 40000, dport, b""),
    )
}

fn ev(chain: u32, rule: u32, position: u32) -> LogEvent {
    LogEvent {
        chain: ChainId(chain),
        rule: RuleId(rule),
        position,
    }
}

#[test]
fn log_lowers_to_a_non_terminal_action_with_its_options() {
    let rs = lower::iptables(&SourceFile::new("t.rules", RULES))
        .unwrap()
        .ruleset;
    let want = [
        "chain c0 INPUT hook=input policy=drop",
        "  r0 #1 proto 6 dst_port 22 -> log level 6 flags 0x3 prefix \"ssh: \"",
        "  r1 #2 proto 6 dst_port 22 -> accept",
        "  r2 #3 proto 17 -> nflog group 3 prefix \"udp\"",
        "  r3 #4 -> jump logdrop",
        "chain c1 FORWARD hook=forward policy=accept",
        "chain c2 OUTPUT hook=output policy=accept",
        "chain c3 logdrop",
        "  r4 #1 -> log prefix \"drop: \"",
        "  r5 #2 -> drop",
    ];
    assert_eq!(rs.dump().lines().collect::<Vec<_>>(), want);
    assert_eq!(rs.logs.len(), 3);
    assert!(matches!(rs.logs[1].kind, LogKind::Nflog { group: 3, .. }));
}

#[test]
fn log_rules_report_and_the_walk_goes_on_in_interp_and_sim() {
    let rs = lower::iptables(&SourceFile::new("t.rules", RULES))
        .unwrap()
        .ruleset;
    let sim = Sim::new(&build(&rs, Hook::Input).unwrap()).unwrap();
    let cases = [
        // ssh: logged by r0, accepted by r1.
        (
            frame(6, 22),
            Verdict::Accept,
            Decided::Rule {
                chain: ChainId(0),
                rule: RuleId(1),
                position: 2,
            },
            vec![ev(0, 0, 1)],
        ),
        // udp: NFLOG r2, then the LOG in logdrop, dropped by r5.
        (
            frame(17, 53),
            Verdict::Drop,
            Decided::Rule {
                chain: ChainId(3),
                rule: RuleId(5),
                position: 2,
            },
            vec![ev(0, 2, 3), ev(3, 4, 1)],
        ),
        // other tcp: only logdrop's LOG.
        (
            frame(6, 80),
            Verdict::Drop,
            Decided::Rule {
                chain: ChainId(3),
                rule: RuleId(5),
                position: 2,
            },
            vec![ev(3, 4, 1)],
        ),
    ];
    for (f, verdict, decided, logs) in cases {
        let d = decode(&f);
        let (o, got) = interp::run_logged(&rs, Hook::Input, &Meta::default(), &d);
        assert_eq!((o.verdict, o.decided), (verdict, decided));
        assert_eq!(got, logs);
        let mut sim_logs = Vec::new();
        let so = sim.run_logged(0, &Meta::default(), &d, &mut sim_logs);
        assert_eq!(so, o);
        assert_eq!(sim_logs, logs);
    }
}

#[test]
fn log_hotdrops_a_truncated_header_like_any_tcp_match() {
    let rs = lower::iptables(&SourceFile::new("t.rules", RULES))
        .unwrap()
        .ruleset;
    // A TCP first fragment whose header is cut at 4 bytes: r0's `-m tcp` hotdrops, nothing logged.
    let f = build_frame(
        [2, 0, 0, 0, 0, 1],
        [2, 0, 0, 0, 0, 2],
        Ipv4Addr::new(10, 0, 0, 2),
        Ipv4Addr::new(10, 0, 0, 1),
        6,
        0,
        &[0x9c, 0x40, 0, 22],
    );
    let (o, logs) = interp::run_logged(&rs, Hook::Input, &Meta::default(), &decode(&f));
    assert!(matches!(
        o.decided,
        Decided::Hotdrop {
            rule: RuleId(0),
            ..
        }
    ));
    assert!(logs.is_empty());
}

#[test]
fn log_rules_print_back_in_yaml_and_iptables_save() {
    let rs = lower::iptables(&SourceFile::new("t.rules", RULES))
        .unwrap()
        .ruleset;
    let y = yaml::print(&rs, &Default::default());
    assert!(
        y.contains("log: {prefix: \"ssh: \", level: 6, tcp_sequence: true, tcp_options: true}"),
        "{y}"
    );
    assert!(y.contains("nflog: {prefix: \"udp\", group: 3}"), "{y}");
    let back = yaml::lower(&SourceFile::new("t.yaml", &y)).unwrap().ruleset;
    assert_eq!(back.dump(), rs.dump());
    assert_eq!(back.logs, rs.logs);
    let saved = tailwall_compiler::listing::log_save(&rs.logs[0]);
    assert_eq!(
        saved,
        " -j LOG --log-prefix \"ssh: \" --log-level 6 --log-tcp-sequence --log-tcp-options"
    );
}

#[test]
fn yaml_log_refuses_a_long_prefix_and_unknown_keys() {
    let src = "chains:\n  input:\n    policy: drop\n    rules:\n      - {log: {prefix: \"012345678901234567890123456789\"}}\n      - {nflog: {level: 3}}\n";
    let e = yaml::lower(&SourceFile::new("t.yaml", src)).unwrap_err();
    let codes: Vec<&str> = e.iter().map(|d| d.code).collect();
    assert!(codes.contains(&"E0420"), "{codes:?}");
    assert!(codes.contains(&"E0402"), "{codes:?}");
}

#[test]
fn migrate_reports_log_exact_and_nflog_and_log_uid_approximated() {
    let src = SourceFile::new(
        "m",
        "*filter\n:INPUT ACCEPT [0:0]\n-A INPUT -j LOG\n-A INPUT -j LOG --log-uid\n-A INPUT -j NFLOG --nflog-group 2\nCOMMIT\n",
    );
    let m = lower::migrate(&src).unwrap();
    let kinds: Vec<_> = m.rules.iter().map(|r| r.status.kind()).collect();
    assert_eq!(kinds, ["exact", "approximated", "approximated"]);
    assert_eq!(m.ruleset.rules().count(), 3);
}
