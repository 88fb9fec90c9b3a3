//! An append-only ledger of sales and refunds, in cents.

use std::collections::HashMap;
use std::fmt;

/// Why a ledger operation was refused.
#[derive(Debug, PartialEq, Eq)]
pub enum LedgerError {
    UnknownEntry(u64),
    AlreadyRefunded(u64),
}

impl fmt::Display for LedgerError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            LedgerError::UnknownEntry(id) => write!(f, "no entry {id}"),
            LedgerError::AlreadyRefunded(id) => write!(f, "entry {id} was already refunded"),
        }
    }
}

/// One booked sale.
#[derive(Debug, Clone)]
pub struct Entry {
    pub id: u64,
    pub label: String,
    pub cents: i64,
    pub refunded: bool,
}

/// Sales and refunds, with a running balance.
#[derive(Default)]
pub struct Ledger {
    entries: HashMap<u64, Entry>,
    next_id: u64,
    balance: i64,
}

impl Ledger {
    pub fn new() -> Self {
        Ledger::default()
    }

    /// Books a sale and returns its entry id.
    pub fn record_sale(&mut self, label: &str, cents: i64) -> u64 {
        let id = self.next_id;
        self.next_id += 1;
        self.entries.insert(id, Entry { id, label: label.to_string(), cents, refunded: false });
        self.balance += cents;
        id
    }

    /// Refunds a sale. A sale can be refunded once.
    pub fn refund(&mut self, id: u64) -> Result<(), LedgerError> {
        let entry = self.entries.get_mut(&id).ok_or(LedgerError::UnknownEntry(id))?;
        // BUG: the refunded flag is never checked, and the amount is added instead of taken.
        entry.refunded = true;
        self.balance += entry.cents;
        Ok(())
    }

    pub fn balance(&self) -> i64 {
        self.balance
    }

    pub fn total_sales(&self) -> i64 {
        self.entries.values().map(|e| e.cents).sum()
    }

    pub fn summary(&self) -> String {
        format!("{} entries, balance {}", self.entries.len(), self.balance)
    }
}
