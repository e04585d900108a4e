//! Stage planning: which field stages run, in which prog-array order, and how long the vectors are.
//!
//! Guarantees:
//! - exactly the fields [`classify`](crate::classify) built a table for get a stage (a field no rule
//!   constrains costs nothing);
//! - order (the heuristic): the field constrained by **more rules** comes first, ties broken by the
//!   field table's order ([`crate::ir::FIELDS`]). A field many rules constrain clears many bits for
//!   most packets, so the all-zero early exit triggers sooner; the order never changes a verdict (the
//!   stages' vectors are ANDed, which commutes), only the work per packet;
//! - `nchunks = max(1, ceil(nrules / CHUNK_BITS))`, within the datapath's bounds: more than
//!   `MAX_CHUNKS * CHUNK_BITS` rules or more than `MAX_STAGES` stages is a [`PlanError`].
//!
//! Thrown away: nothing but the ordering freedom.
use crate::classify::Classified;
use crate::ir::Field;
use tailwall_abi::{CHUNK_BITS, MAX_CHUNKS, MAX_STAGES};

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Plan {
    /// Field stages in prog-array order; the final program sits at index `stages.len()`.
    pub stages: Vec<Field>,
    pub nrules: u32,
    /// 512-rule chunks per vector.
    pub nchunks: u32,
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum PlanError {
    #[error("{nrules} rules in one hook exceed the datapath's limit of {max}")]
    TooManyRules { nrules: usize, max: usize },
    #[error("{nstages} field stages exceed the datapath's limit of {max}")]
    TooManyStages { nstages: usize, max: usize },
}

/// Order the stages of a classified hook and size its vectors.
pub fn plan(c: &Classified<'_>) -> Result<Plan, PlanError> {
    let nrules = c.rules.len();
    let max = MAX_CHUNKS as usize * CHUNK_BITS;
    if nrules > max {
        return Err(PlanError::TooManyRules { nrules, max });
    }
    if c.fields.len() > MAX_STAGES as usize {
        return Err(PlanError::TooManyStages {
            nstages: c.fields.len(),
            max: MAX_STAGES as usize,
        });
    }
    let mut order: Vec<(usize, Field)> =
        c.fields.iter().map(|f| (f.constrained, f.field)).collect();
    order.sort_by(|a, b| b.0.cmp(&a.0).then(a.1.cmp(&b.1)));
    Ok(Plan {
        stages: order.into_iter().map(|(_, f)| f).collect(),
        nrules: nrules as u32,
        nchunks: nrules.div_ceil(CHUNK_BITS).max(1) as u32,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::classify::{FieldClasses, Table};
    use crate::ir::{Hook, Verdict};

    fn classified(
        fields: &[(Field, usize)],
        nrules: usize,
    ) -> (Vec<crate::ir::Rule>, Vec<FieldClasses>) {
        let fcs = fields
            .iter()
            .map(|&(field, constrained)| FieldClasses {
                field,
                constrained,
                classes: vec![],
                table: Table::Array(vec![]),
            })
            .collect();
        let rule = crate::ir::Rule {
            id: crate::ir::RuleId(0),
            chain: crate::ir::ChainId(0),
            position: 1,
            matches: vec![],
            action: crate::ir::Action::Accept,
            comment: None,
            counters: None,
            span: Default::default(),
        };
        (vec![rule; nrules], fcs)
    }

    #[test]
    fn stages_most_constrained_first_ties_by_field_order() {
        let (rules, fields) = classified(
            &[(Field::SrcIp, 2), (Field::Proto, 5), (Field::DstPort, 2)],
            5,
        );
        let c = Classified {
            hook: Hook::Input,
            rules: rules.iter().collect(),
            policy: Verdict::Accept,
            fields,
        };
        let p = plan(&c).unwrap();
        assert_eq!(p.stages, vec![Field::Proto, Field::SrcIp, Field::DstPort]);
        assert_eq!(p.nchunks, 1);
    }

    #[test]
    fn nchunks_rounds_up_and_is_at_least_one() {
        for (n, want) in [(0, 1), (1, 1), (512, 1), (513, 2), (1024, 2), (1025, 3)] {
            let (rules, fields) = classified(&[], n);
            let c = Classified {
                hook: Hook::Input,
                rules: rules.iter().collect(),
                policy: Verdict::Accept,
                fields,
            };
            assert_eq!(plan(&c).unwrap().nchunks, want, "{n} rules");
        }
    }

    #[test]
    fn stages_over_limit_are_rejected() {
        let many: Vec<(Field, usize)> = (0..=MAX_STAGES as usize)
            .map(|i| (Field::ALL[i % 5], 1))
            .collect();
        let (rules, fields) = classified(&many, 1);
        let c = Classified {
            hook: Hook::Input,
            rules: rules.iter().collect(),
            policy: Verdict::Accept,
            fields,
        };
        assert!(matches!(
            plan(&c),
            Err(PlanError::TooManyStages {
                nstages: 17,
                max: 16
            })
        ));
    }

    #[test]
    fn nrules_over_limit_is_rejected() {
        let n = MAX_CHUNKS as usize * CHUNK_BITS + 1;
        let (rules, fields) = classified(&[], n);
        let c = Classified {
            hook: Hook::Input,
            rules: rules.iter().collect(),
            policy: Verdict::Accept,
            fields,
        };
        assert!(matches!(plan(&c), Err(PlanError::TooManyRules { .. })));
    }
}
