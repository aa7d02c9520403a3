//! A page of the audit log for the admin API, within a byte budget, reading no body it does not
//! return.
//!
//! Two steps in one read transaction (one snapshot): the matching rows' indexed columns and the
//! stored size of each record (`octet_length`, which SQLite answers from the record header
//! without loading the text), then the text of only the records the page keeps, one primary-key
//! lookup each. A record's text is borrowed from SQLite and, for readers who see no bodies,
//! copied out without them.

use super::audit::{audit_with_json, query_sql_of, sql_seq, COLUMNS};
use crate::{AuditPage, AuditQuery, PageBudget, StoreError, StoredAudit};
use rusqlite::{params_from_iter, Connection};

/// `COLUMNS` with the record's stored size in place of its text.
fn sized_columns() -> String {
    COLUMNS.replace(", json", ", octet_length(json)")
}

pub(super) fn page(
    conn: &mut Connection,
    q: &AuditQuery,
    budget: PageBudget,
) -> Result<AuditPage, StoreError> {
    let Some(one_more) = AuditPage::probe(q) else {
        return Ok(AuditPage::default());
    };
    let (sql, values) = query_sql_of(&one_more, &sized_columns());
    let tx = conn.transaction()?;
    let sized: Vec<(StoredAudit, usize)> = {
        let mut stmt = tx.prepare_cached(&sql)?;
        let rows = stmt.query_map(params_from_iter(values), |row| {
            let size: i64 = row.get(11)?;
            Ok(audit_with_json(row, String::new())
                .map(|r| (r, usize::try_from(size).unwrap_or(usize::MAX))))
        })?;
        rows.map(|r| r.map_err(StoreError::from).and_then(|a| a))
            .collect::<Result<_, _>>()?
    };
    let mut text = tx.prepare_cached("SELECT json FROM audit WHERE seq = ?1")?;
    let page = AuditPage::fill(sized, q.limit, budget, |mut row: StoredAudit| {
        let seq = row.seq;
        let corrupt = |reason: String| StoreError::Corrupt {
            id: format!("audit {seq}"),
            reason,
        };
        row.json = text.query_row([sql_seq(seq)?], |r| {
            Ok(match r.get_ref(0)?.as_str() {
                Ok(json) => AuditPage::document(seq, json, budget.bodies),
                Err(e) => Err(corrupt(e.to_string())),
            })
        })??;
        Ok::<_, StoreError>(row)
    })?;
    Ok(page)
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use crate::conformance::{audit_pages, audit_pages_without_bodies};
    use crate::SqliteStore;

    /// A file store and an in-memory one, both empty.
    fn stores() -> (tempfile::TempDir, Vec<SqliteStore>) {
        let dir = tempfile::tempdir().unwrap();
        let file = SqliteStore::open(&dir.path().join("moat.db")).unwrap();
        (dir, vec![file, SqliteStore::open_in_memory().unwrap()])
    }

    #[tokio::test]
    async fn a_page_stops_at_its_byte_budget_and_the_cursor_continues() {
        let (_dir, stores) = stores();
        for store in stores {
            audit_pages(&store).await;
        }
    }

    #[tokio::test]
    async fn without_bodies_the_records_carry_none() {
        let (_dir, stores) = stores();
        for store in stores {
            audit_pages_without_bodies(&store).await;
        }
    }
}
