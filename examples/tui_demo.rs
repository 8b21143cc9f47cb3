//! Try the TUI with the fake pipeline: `cargo run --example tui_demo [PATHS...]`.
//! With no paths it lists three built-in scenarios (one with errors).

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use workbench::tui::{run_tui_with_out_dir, FakePipeline};

fn main() -> anyhow::Result<()> {
    let paths: Vec<PathBuf> = std::env::args_os().skip(1).map(PathBuf::from).collect();
    // Slow the fake down so the progress bars are visible.
    let pipeline = Arc::new(FakePipeline::with_delay(Duration::from_millis(25)));
    let out_dir = std::env::temp_dir().join("workbench-tui-demo");
    run_tui_with_out_dir(paths, pipeline, out_dir)?;
    Ok(())
}
