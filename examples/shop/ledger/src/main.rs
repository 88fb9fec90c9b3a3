//! Books a day of sales and refunds.

mod ledger;

use ledger::Ledger;

fn main() {
    let mut ledger = Ledger::new();
    let a = ledger.record_sale("widget", 4_00);
    ledger.record_sale("gadget", 12_50);
    let total_sales = ledger.total_sales();
    ledger.refund(a).ok();
    ledger.refund(a).ok();
    assert!(ledger.balance() <= total_sales);
    println!("{}", ledger.summary());
}
