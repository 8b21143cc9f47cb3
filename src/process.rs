//! What this process can tell of others: files a killed run left behind
//! (the measurement cache's and the report writer's temp files) are swept
//! only when the process that wrote them is gone.

use std::path::Path;

/// Whether process `pid` has certainly exited: never this process, and only
/// where `/proc` can tell (without it no process is known to be gone).
pub(crate) fn process_is_gone(pid: u32) -> bool {
    pid != std::process::id()
        && Path::new("/proc/self").exists()
        && !Path::new(&format!("/proc/{pid}")).exists()
}
