//! Shared helpers for the kernel and oracle test tiers.
