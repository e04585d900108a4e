//! Oracle tier: tailwall's engines against real iptables in a throwaway namespace.
use std::net::Ipv4Addr;
use tailwall_compiler::packet::{build_frame, l4_header};
use tailwall_tests::netns::require_root_or_skip;
use tailwall_tests::oracle::{Flavor, IptablesOracle, Observed};

const HANDMADE: &str = "*filter
:INPUT DROP [0:0]
:FORWARD ACCEPT [0:0]
:OUTPUT ACCEPT [0:0]
-A INPUT -s 10.0.0.0/8 -p tcp -m tcp --dport 22 -j ACCEPT
-A INPUT -d 203.0.113.7/32 -j DROP
-A INPUT -p udp -m udp --sport 1000:2000 -j ACCEPT
COMMIT
";

#[test]
fn oracle_delivers_arbitrary_addresses() {
    if !require_root_or_skip("oracle") {
        return;
    }
    handmade_cases(Flavor::Legacy, Observed::NotCounted);
}

#[test]
fn oracle_nft_delivers_arbitrary_addresses() {
    if !require_root_or_skip("oracle") {
        return;
    }
    // iptables-nft translates `-m tcp --dport` into nft payload loads, which read a port from a
    // truncated header when its bytes are there: no hotdrop, unlike x_tables' tcp match.
    handmade_cases(
        Flavor::Nft,
        Observed::Rule {
            position: 1,
            target: "ACCEPT".into(),
        },
    );
}

/// Hand-written frames whose fate is known, through real iptables: checks the delivery set-up (arbitrary
/// addresses reach INPUT, replies do not) and the counter reading, before any generated comparison.
fn handmade_cases(flavor: Flavor, truncated_tcp: Observed) {
    let o = IptablesOracle::new(flavor).unwrap();
    o.load(HANDMADE).unwrap();
    let mac = o.victim_mac();
    let frame = |s: [u8; 4], d: [u8; 4], proto: u8, sp: u16, dp: u16| {
        let l4 = if proto == 1 {
            vec![8, 0, 0, 0, 0, 0, 0, 0]
        } else {
            l4_header(proto, sp, dp, b"")
        };
        build_frame(
            mac,
            [2, 0, 0, 0, 0, 9],
            Ipv4Addr::from(s),
            Ipv4Addr::from(d),
            proto,
            0,
            &l4,
        )
    };
    let mut c = o.counters().unwrap();
    let cases = [
        (
            frame([10, 9, 8, 7], [1, 2, 3, 4], 6, 5555, 22),
            Observed::Rule {
                position: 1,
                target: "ACCEPT".into(),
            },
        ),
        (
            frame([8, 8, 8, 8], [203, 0, 113, 7], 1, 0, 0),
            Observed::Rule {
                position: 2,
                target: "DROP".into(),
            },
        ),
        (
            frame([172, 16, 0, 1], [100, 64, 0, 1], 17, 1500, 53),
            Observed::Rule {
                position: 3,
                target: "ACCEPT".into(),
            },
        ),
        (
            frame([192, 0, 2, 2], [192, 0, 2, 1], 17, 999, 53),
            Observed::Policy {
                policy: "DROP".into(),
            },
        ),
        (
            frame([11, 0, 0, 1], [240, 0, 0, 1], 6, 1, 22),
            Observed::Policy {
                policy: "DROP".into(),
            },
        ),
    ];
    for (i, (f, want)) in cases.iter().enumerate() {
        let (got, after) = o.classify(f, &c).unwrap();
        assert_eq!(&got, want, "case {i}");
        c = after;
    }
    // A TCP header cut to 10 bytes (ports present, header short): x_tables' tcp match hotdrops it.
    let mut t = frame([10, 0, 0, 1], [1, 1, 1, 1], 6, 1, 22);
    t.truncate(14 + 20 + 10);
    let tot = (20 + 10u16).to_be_bytes();
    t[16..18].copy_from_slice(&tot);
    t[24..26].copy_from_slice(&[0, 0]);
    let cs = tailwall_compiler::packet::ipv4_checksum(&t[14..34]);
    t[24..26].copy_from_slice(&cs.to_be_bytes());
    let (got, _) = o.classify(&t, &c).unwrap();
    assert_eq!(got, truncated_tcp);
}
