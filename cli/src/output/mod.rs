//! How `fleetctl` prints: tables and short summaries for people (the default), or with
//! `--output json` the API's JSON bodies for scripts (as `kubectl -o json` does).
//!
//! - [`table`]: aligned plain-text tables.
//! - [`views`]: what each resource looks like as a table or a summary.

pub mod table;
pub mod views;

use serde::Serialize;

pub use table::Table;

/// `--output`: for people or for scripts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, clap::ValueEnum)]
pub enum Format {
    /// Tables and short summaries (also `text`).
    #[default]
    #[value(alias = "text")]
    Table,
    /// The API's JSON bodies; lists as `{"items": [...], "next_cursor": null}` with every
    /// page fetched.
    Json,
}

impl Format {
    pub fn is_json(self) -> bool {
        self == Self::Json
    }
}

/// Prints a value as pretty JSON.
pub fn print_json(v: &impl Serialize) -> serde_json::Result<()> {
    println!("{}", serde_json::to_string_pretty(v)?);
    Ok(())
}

/// Prints every item of a list: as the API's list body, or as a table, or as
/// `no {what}` when there is none.
pub fn print_list<T: Serialize>(
    format: Format,
    items: Vec<T>,
    what: &str,
    table: impl FnOnce(&[T]) -> Table,
) -> serde_json::Result<()> {
    if format.is_json() {
        return print_json(&fleet_protocol::api::List { items, next_cursor: None });
    }
    if items.is_empty() {
        println!("no {what}");
    } else {
        print!("{}", table(&items).render());
    }
    Ok(())
}
