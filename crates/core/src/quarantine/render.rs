//! Quarantined rows for a person: a table of rows, or one row in full.

use super::Quarantined;

fn short(text: &str, n: usize) -> String {
    let one_line = text.replace('\n', " ");
    if one_line.chars().count() > n {
        format!("{}…", one_line.chars().take(n).collect::<String>())
    } else {
        one_line
    }
}

/// The rows as a table for a person, one line each (the error shortened),
/// and a count.
pub fn render_list(rows: &[Quarantined]) -> String {
    let mut out = format!(
        "{:>6}  {:<9}  {:<22}  {:<56}  {:<26}  {:<8}  {:<8}  {:>3}  {:<19}  error\n",
        "id", "state", "shard", "sequence number", "table", "op", "class", "att", "first seen"
    );
    for r in rows {
        out.push_str(&format!(
            "{:>6}  {:<9}  {:<22}  {:<56}  {:<26}  {:<8}  {:<8}  {:>3}  {:<19}  {}\n",
            r.id,
            r.state.name(),
            r.shard_id.0,
            r.sequence_number.as_str(),
            r.table.as_deref().unwrap_or("-"),
            r.operation.as_deref().unwrap_or("-"),
            r.class,
            r.attempts,
            r.first_seen.get(..19).unwrap_or(&r.first_seen),
            short(&r.message, 100)
        ));
    }
    out.push_str(&format!("{} record(s)\n", rows.len()));
    out
}

impl Quarantined {
    /// Every field of the row and its raw payload (pretty JSON, else text,
    /// else hex), for a person.
    pub fn render(&self) -> String {
        let payload = match serde_json::from_slice::<serde_json::Value>(&self.raw) {
            Ok(v) => serde_json::to_string_pretty(&v).unwrap_or_default(),
            Err(_) => match std::str::from_utf8(&self.raw) {
                Ok(s) => s.to_owned(),
                Err(_) => self.raw.iter().map(|b| format!("{b:02x}")).collect(),
            },
        };
        format!(
        "id:              {}\nstate:           {}\nresolution:      {}\nshard:           {}\nsequence number: {}\ntable:           {}\noperation:       {}\nerror class:     {}\nerror:           {}\nattempts:        {}\nfirst seen:      {} UTC\nlast seen:       {} UTC\nraw payload ({} bytes):\n{}\n",
        self.id,
        self.state.name(),
        self.resolution.as_deref().unwrap_or("-"),
        self.shard_id,
        self.sequence_number,
        self.table.as_deref().unwrap_or("-"),
        self.operation.as_deref().unwrap_or("-"),
        self.class,
        self.message,
        self.attempts,
        self.first_seen,
        self.last_seen,
        self.raw.len(),
        payload
    )
    }
}
