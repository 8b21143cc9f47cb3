//! Built-in catalog of common cloud instance types and edge devices.
//! Scenarios reference entries by name and may override any field.

use super::target::TargetSpec;

/// Every catalog entry.
pub fn entries() -> Vec<TargetSpec> {
    Vec::new()
}

/// The entry called `name`, if the catalog has one.
pub fn find(name: &str) -> Option<TargetSpec> {
    entries().into_iter().find(|t| t.name == name)
}

/// Catalog names, for error messages ("accepted: ...") and did-you-mean.
pub fn names() -> Vec<String> {
    entries().into_iter().map(|t| t.name).collect()
}
