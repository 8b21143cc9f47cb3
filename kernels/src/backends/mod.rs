//! One file per backend.

pub mod naive;
