//! The chain graph: the one place that knows how chains reach each other through `-j`/`-g` (jump and goto
//! edges), used by both front ends, [`super::verify`], `migrate` and the datapath.
//!
//! Nodes are chain indices `0..n` (the position of the chain in its ruleset or table); an edge `a → b` is a
//! rule of `a` that jumps or goes to `b`, carrying the span to point at. What it answers:
//! - [`ChainGraph::reachable_from`]: the chains a hook's chain reaches (iptables evaluates nothing else);
//! - [`ChainGraph::check`]: a loop (iptables-restore refuses it with ELOOP, "Too many levels of symbolic
//!   links") or a path longer than [`MAX_CALL_DEPTH`] edges; both are `E0313`, whichever front end found
//!   them;
//! - [`iface_error`]: the per-hook interface rule, `E0314` from both front ends: a rule written in the
//!   built-in INPUT chain cannot test the output interface and one in OUTPUT not the input interface
//!   (iptables' "Can't use -o with INPUT"). iptables checks only rules written in the built-in chain
//!   itself: in a user chain reached from INPUT, `-o` is accepted and simply never matches (the packet's
//!   output interface is empty there), so the graph does not propagate this check.
//!
//! Built on petgraph's `DiGraph`; strongly connected components find loops, a topological order gives the
//! nesting depth.
use super::{Field, Hook, Ruleset, MAX_CALL_DEPTH};
use crate::diag::{Diagnostic, Span};
use petgraph::algo::{tarjan_scc, toposort};
use petgraph::graph::{DiGraph, NodeIndex};
use petgraph::visit::{Dfs, EdgeRef};
use petgraph::Direction;

/// Jump and goto edges between the chains of one table.
#[derive(Clone, Debug)]
pub struct ChainGraph {
    g: DiGraph<(), Span, u32>,
}

/// What is wrong with a chain graph (chain indices are the graph's nodes).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum GraphFault {
    /// `path[0] → path[1] → … → path[0]`; `closing` is the edge back to `path[0]`.
    Loop {
        /// The chains of the cycle, in edge order, each once.
        path: Vec<usize>,
        /// The jump/goto (its span in the source) from the last chain of `path` back to `path[0]`.
        closing: Span,
    },
    /// The longest path from `from` has `depth` edges, more than [`MAX_CALL_DEPTH`]; `at` is its first edge.
    TooDeep {
        /// The chain the too-long path starts at.
        from: usize,
        /// Edges on the longest path from `from`.
        depth: usize,
        /// The first jump/goto of that path.
        at: Span,
    },
}

impl GraphFault {
    /// The located `E0313` error, with chain names from `name`.
    pub fn diagnostic(&self, name: impl Fn(usize) -> String) -> Diagnostic {
        match self {
            GraphFault::Loop { path, closing } => {
                let mut names: Vec<String> = path.iter().map(|&c| name(c)).collect();
                names.push(name(path[0]));
                Diagnostic::error("E0313", format!("chain loop: {}", names.join(" -> ")))
                    .at(*closing)
                    .label("closes the loop")
                    .help("iptables refuses loops between chains (\"Too many levels of symbolic links\"); a chain may not reach itself")
            }
            GraphFault::TooDeep { from, depth, at } => Diagnostic::error(
                "E0313",
                format!(
                    "jumps and gotos nest {depth} deep from `{}`; at most {MAX_CALL_DEPTH} are allowed",
                    name(*from)
                ),
            )
            .at(*at)
            .help("flatten the chain structure"),
        }
    }
}

impl ChainGraph {
    /// A graph of `n` chains with the given `(from, to, span)` edges (indices `< n`; others are ignored).
    pub fn new(n: usize, edges: impl IntoIterator<Item = (usize, usize, Span)>) -> ChainGraph {
        let mut g = DiGraph::with_capacity(n, n);
        for _ in 0..n {
            g.add_node(());
        }
        for (a, b, s) in edges {
            if a < n && b < n {
                g.add_edge(NodeIndex::new(a), NodeIndex::new(b), s);
            }
        }
        ChainGraph { g }
    }

    /// The graph of a ruleset: one edge per jump or goto rule, pointing at the rule.
    pub fn of(rs: &Ruleset) -> ChainGraph {
        ChainGraph::new(
            rs.chains.len(),
            rs.chains.iter().enumerate().flat_map(|(i, c)| {
                c.rules
                    .iter()
                    .filter_map(move |r| r.action.target().map(|t| (i, t.0 as usize, r.span)))
            }),
        )
    }

    /// Number of chains.
    pub fn len(&self) -> usize {
        self.g.node_count()
    }

    /// The graph has no chain.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The chains `a` jumps or goes to, in rule order.
    pub fn targets(&self, a: usize) -> Vec<usize> {
        let mut t: Vec<(usize, usize)> = self
            .g
            .edges_directed(NodeIndex::new(a), Direction::Outgoing)
            .map(|e| (e.id().index(), e.target().index()))
            .collect();
        t.sort_unstable();
        t.into_iter().map(|(_, b)| b).collect()
    }

    /// `seen[c]`: chain `c` is `start` or reachable from it.
    pub fn reachable_from(&self, start: usize) -> Vec<bool> {
        let mut seen = vec![false; self.len()];
        if start >= self.len() {
            return seen;
        }
        let mut dfs = Dfs::new(&self.g, NodeIndex::new(start));
        while let Some(n) = dfs.next(&self.g) {
            seen[n.index()] = true;
        }
        seen
    }

    /// The graph without the chains where `keep` is false (indices unchanged).
    pub fn restricted(&self, keep: &[bool]) -> ChainGraph {
        let k = |i: usize| keep.get(i).copied().unwrap_or(false);
        ChainGraph::new(
            self.len(),
            self.g
                .edge_references()
                .filter(|e| k(e.source().index()) && k(e.target().index()))
                .map(|e| (e.source().index(), e.target().index(), *e.weight())),
        )
    }

    /// The longest jump/goto path (in edges) from every chain, or the first fault: a loop (the loop through
    /// the lowest-numbered chain on one) before a path deeper than [`MAX_CALL_DEPTH`].
    ///
    /// # Errors
    /// [`GraphFault::Loop`] for a cycle of jumps/gotos, else [`GraphFault::TooDeep`] for the first
    /// chain whose longest path exceeds [`MAX_CALL_DEPTH`] edges.
    pub fn check(&self) -> Result<Vec<usize>, GraphFault> {
        if let Some(f) = self.find_loop() {
            return Err(f);
        }
        let order = toposort(&self.g, None).map_err(|c| GraphFault::Loop {
            path: vec![c.node_id().index()],
            closing: Span::default(),
        })?;
        let mut depth = vec![0usize; self.len()];
        let mut first: Vec<Option<Span>> = vec![None; self.len()];
        // Reverse topological order: every target is finished before its sources.
        for &n in order.iter().rev() {
            let mut best = 0;
            let mut at = None;
            let mut out: Vec<_> = self.g.edges_directed(n, Direction::Outgoing).collect();
            out.sort_by_key(|e| e.id().index());
            for e in out {
                let d = depth[e.target().index()] + 1;
                if d > best {
                    best = d;
                    at = Some(*e.weight());
                }
            }
            depth[n.index()] = best;
            first[n.index()] = at;
        }
        if let Some(c) = (0..self.len()).find(|&c| depth[c] > MAX_CALL_DEPTH) {
            return Err(GraphFault::TooDeep {
                from: c,
                depth: depth[c],
                at: first[c].unwrap_or_default(),
            });
        }
        Ok(depth)
    }

    /// A loop through the lowest-numbered chain that lies on one, as the shortest such cycle.
    fn find_loop(&self) -> Option<GraphFault> {
        let mut in_cycle = vec![usize::MAX; self.len()];
        for (i, scc) in tarjan_scc(&self.g).into_iter().enumerate() {
            let cyclic = scc.len() > 1 || self.g.contains_edge(scc[0], scc[0]);
            if cyclic {
                for n in scc {
                    in_cycle[n.index()] = i;
                }
            }
        }
        let start = (0..self.len()).find(|&c| in_cycle[c] != usize::MAX)?;
        let comp = in_cycle[start];
        // BFS inside the component from `start` back to `start`.
        let mut prev: Vec<Option<(usize, Span)>> = vec![None; self.len()];
        let mut queue = std::collections::VecDeque::from([start]);
        let mut closing = None;
        'bfs: while let Some(c) = queue.pop_front() {
            let mut out: Vec<_> = self
                .g
                .edges_directed(NodeIndex::new(c), Direction::Outgoing)
                .collect();
            out.sort_by_key(|e| e.id().index());
            for e in out {
                let t = e.target().index();
                if t == start {
                    closing = Some((c, *e.weight()));
                    break 'bfs;
                }
                if in_cycle[t] == comp && prev[t].is_none() {
                    prev[t] = Some((c, *e.weight()));
                    queue.push_back(t);
                }
            }
        }
        let (mut last, span) = closing?;
        let mut path = vec![last];
        while last != start {
            last = prev[last].map(|(p, _)| p)?;
            path.push(last);
        }
        path.reverse();
        Some(GraphFault::Loop {
            path,
            closing: span,
        })
    }
}

/// `E0314` when a rule written in the built-in chain of `hook` tests an interface the hook's packets do not
/// have (`-o`/`out_iface` in INPUT, `-i`/`in_iface` in OUTPUT); `flag` is the front end's spelling.
pub fn iface_error(hook: Hook, field: Field, flag: &str, at: Span) -> Option<Diagnostic> {
    if !matches!(field, Field::InIface | Field::OutIface) || hook.has_iface(field) {
        return None;
    }
    Some(
        Diagnostic::error(
            "E0314",
            format!("`{flag}` cannot be used in chain {}", hook.chain_name()),
        )
        .at(at)
        .help(match field {
            Field::OutIface => "packets at INPUT have no output interface (iptables: \"Can't use -o with INPUT\"); a user chain jumped to from INPUT may test it (it never matches there)",
            _ => "packets at OUTPUT have no input interface (iptables: \"Can't use -i with OUTPUT\"); a user chain jumped to from OUTPUT may test it (it never matches there)",
        }),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s(n: usize) -> Span {
        Span::new(n, n + 1)
    }

    #[test]
    fn graph_finds_the_loop_and_its_closing_edge() {
        let g = ChainGraph::new(3, [(0, 1, s(1)), (1, 2, s(2)), (2, 1, s(3))]);
        assert_eq!(
            g.check(),
            Err(GraphFault::Loop {
                path: vec![1, 2],
                closing: s(3)
            })
        );
        let g = ChainGraph::new(1, [(0, 0, s(7))]);
        assert_eq!(
            g.check(),
            Err(GraphFault::Loop {
                path: vec![0],
                closing: s(7)
            })
        );
    }

    #[test]
    fn graph_measures_depth_and_bounds_it() {
        let n = MAX_CALL_DEPTH + 2;
        let chain = |len: usize| ChainGraph::new(n, (0..len).map(|i| (i, i + 1, s(i))));
        let d = chain(MAX_CALL_DEPTH).check().unwrap();
        assert_eq!(d[0], MAX_CALL_DEPTH);
        assert!(matches!(
            chain(MAX_CALL_DEPTH + 1).check(),
            Err(GraphFault::TooDeep { from: 0, depth, at }) if depth == MAX_CALL_DEPTH + 1 && at == s(0)
        ));
    }

    #[test]
    fn graph_reachability_and_restriction() {
        let g = ChainGraph::new(4, [(0, 1, s(0)), (1, 2, s(1)), (3, 0, s(2))]);
        assert_eq!(g.reachable_from(0), [true, true, true, false]);
        assert_eq!(g.reachable_from(9), [false; 4]);
        let r = g.restricted(&[true, false, true, true]);
        assert_eq!(r.reachable_from(0), [true, false, false, false]);
        assert_eq!(g.targets(0), [1]);
    }

    #[test]
    fn iface_rule_is_per_builtin_chain() {
        assert!(iface_error(Hook::Input, Field::OutIface, "-o", s(0)).is_some());
        assert!(iface_error(Hook::Output, Field::InIface, "in_iface", s(0)).is_some());
        assert!(iface_error(Hook::Forward, Field::OutIface, "-o", s(0)).is_none());
        assert!(iface_error(Hook::Input, Field::InIface, "-i", s(0)).is_none());
        assert!(iface_error(Hook::Input, Field::Proto, "-p", s(0)).is_none());
    }
}
