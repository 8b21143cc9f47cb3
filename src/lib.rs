//! workbench: measure, project, simulate and recommend how to serve an ML model.
//!
//! One pipeline, two front ends: the CLI (`workbench run`) and the TUI call
//! the same library functions. See `docs/` and DESIGN.md for the layout.

pub mod cli;
pub mod hardware;
pub mod measure;
pub mod pipeline;
pub mod plan;
mod process;
pub mod report;
pub mod scenario;
pub mod sim;
pub mod tui;
