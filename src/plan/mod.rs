//! The planner: candidate plans, constraints, ranking, Pareto front, sensitivity, rationale.

pub mod pareto;
pub mod sensitivity;
