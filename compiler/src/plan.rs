//! Stage planning: which field stages run, in which prog-array order, and how long the vectors are.
//!
//! Guarantees:
//! - exactly the fields [`classify`](crate::classify) built a table for get a stage (a field no rule
//!   constrains costs nothing);
//! - order (the heuristic): the field constrained by **more rules** comes first, ties broken by the
//!   field table's order ([`crate::ir::FIELDS`]). A field many rules constrain clears many bits for
//!   most packets, so the all-zero early exit triggers sooner; the order never changes a verdict (the
//!   stages' vectors are ANDed, which commutes), only the work per packet;
//! - `nchunks = max(1, ceil(npositions / CHUNK_BITS))` (positions of the flattened chains, every
//!   region's policy position included), within the datapath's bounds: more than
//!   `MAX_CHUNKS * CHUNK_BITS` positions or more than `MAX_STAGES` stages is a [`PlanError`].
//!
//! Thrown away: nothing but the ordering freedom.
use crate::classify::Classified;
use crate::ir::Field;
use tailwall_abi::{CHUNK_BITS, MAX_CHUNKS, MAX_STAGES};

/// The shape of one hook's datapath program chain: stage order and vector size.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Plan {
    /// Field stages in prog-array order; the final program sits at index `stages.len()`.
    pub stages: Vec<Field>,
    /// Positions (bits per vector).
    pub nrules: u32,
    /// 512-position chunks per vector.
    pub nchunks: u32,
}

/// The hook does not fit the datapath's constant bounds (`tailwall_abi`).
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum PlanError {
    /// More positions than the vectors can hold.
    #[error("{nrules} positions exceed the datapath's limit of {max}")]
    TooManyRules {
        /// Positions of the flattened chains (rules plus policy positions).
        nrules: usize,
        /// `MAX_CHUNKS * CHUNK_BITS` (131072).
        max: usize,
    },
    /// More field stages than the prog array holds.
    #[error("{nstages} field stages exceed the datapath's limit of {max}")]
    TooManyStages {
        /// Fields some rule constrains.
        nstages: usize,
        /// `MAX_STAGES` (16).
        max: usize,
    },
}

/// Order the stages of a classified hook and size its vectors.
///
/// # Errors
/// [`PlanError`] when the positions or the stages exceed the datapath's bounds.
pub fn plan(c: &Classified<'_>) -> Result<Plan, PlanError> {
    let nrules = c.npositions();
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
    use crate::flatten::{Flat, Origin, Position, Step};
    use crate::ir::Verdict;

    fn classified(fields: &[(Field, usize)], nrules: usize) -> Classified<'static> {
        let fcs = fields
            .iter()
            .map(|&(field, constrained)| FieldClasses {
                field,
                constrained,
                classes: vec![],
                table: Table::Array(vec![]),
            })
            .collect();
        let p = Position {
            conjuncts: vec![],
            step: Step::Verdict(Verdict::Accept),
            origin: Origin::FallOff,
            region: 0,
        };
        Classified {
            flat: Flat {
                regions: vec![],
                positions: vec![p; nrules],
            },
            fields: fcs,
        }
    }

    #[test]
    fn stages_most_constrained_first_ties_by_field_order() {
        let c = classified(
            &[(Field::SrcIp, 2), (Field::Proto, 5), (Field::DstPort, 2)],
            5,
        );
        let p = plan(&c).unwrap();
        assert_eq!(p.stages, vec![Field::Proto, Field::SrcIp, Field::DstPort]);
        assert_eq!(p.nchunks, 1);
    }

    #[test]
    fn nchunks_rounds_up_and_is_at_least_one() {
        for (n, want) in [(0, 1), (1, 1), (512, 1), (513, 2), (1024, 2), (1025, 3)] {
            let c = classified(&[], n);
            assert_eq!(plan(&c).unwrap().nchunks, want, "{n} rules");
        }
    }

    #[test]
    fn stages_over_limit_are_rejected() {
        let many: Vec<(Field, usize)> = (0..=MAX_STAGES as usize)
            .map(|i| (Field::ALL[i % 5], 1))
            .collect();
        let c = classified(&many, 1);
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
        let c = classified(&[], n);
        assert!(matches!(plan(&c), Err(PlanError::TooManyRules { .. })));
    }
}
