//! The markdown block for one table, in the origin's exact layout (ORIGIN.md §2.3 T2).
//!
//! Assistants were prompted against the origin's output, so the headings, labels, arrows and blank lines are
//! kept byte for byte. Additions (a table comment as Purpose, `## Column Notes`, the order date range and a
//! few query hints) follow the same line shapes and appear only where they apply.

use super::TableName;
use super::catalog::TableInfo;

/// `"\n\n# Table: ...\n"`: the block's lines joined by `\n`, ending in `\n`, after a blank-line prefix.
pub(crate) fn block(info: &TableInfo) -> String {
    let name = &info.name;
    let mut lines: Vec<String> = vec![format!("# Table: {name}"), String::new()];
    let purpose = info.comment.as_deref().map(one_line).filter(|c| !c.is_empty());
    lines
        .push(format!("**Purpose:** {}", purpose.unwrap_or_else(|| format!("Table containing {} data", name.table()))));

    lines.extend([String::new(), "## Schema".to_owned()]);
    lines.push(info.columns.iter().map(|c| format!("{}:{}", c.name, c.data_type)).collect::<Vec<_>>().join(", "));

    let notes: Vec<String> = info
        .columns
        .iter()
        .filter_map(|c| c.comment.as_deref().map(one_line).filter(|n| !n.is_empty()).map(|n| (c, n)))
        .map(|(c, n)| format!("- `{}`: {n}", c.name))
        .collect();
    section(&mut lines, "## Column Notes", notes);

    let relationships = info
        .foreign_keys
        .iter()
        .map(|fk| format!("- `{}` → `{}.{}` (MANY_TO_ONE)", fk.column, fk.target, fk.target_column))
        .collect();
    section(&mut lines, "## Relationships", relationships);

    let values = info.valid_values.iter().map(|(label, v)| format!("**{label}:** {v}")).collect();
    section(&mut lines, "## Valid Values", values);

    let mut hints = vec![format!("- Use `{name}` for queries about {}", name.table().replace('_', " "))];
    hints.extend(info.foreign_keys.iter().map(|fk| format!("- Join with `{}` using `{}`", fk.target, fk.column)));
    let has = |column: &str| info.columns.iter().any(|c| c.name == column);
    if name.schema() == "retail" {
        match name.table() {
            "order_items" if has("total_amount") => {
                hints.push("- Revenue is SUM(total_amount) (after discount)".into())
            }
            "stores" if has("is_online") => {
                hints.push("- Use is_online to tell the online store from physical stores".into())
            }
            _ => {}
        }
    }
    if let Some(pii) = &info.personal_data {
        let columns = pii.columns.iter().map(|c| format!("`{c}`")).collect::<Vec<_>>().join(", ");
        hints.push(if pii.clear {
            format!("- {columns}: personal data, shown to you in clear (your access grants pii:read)")
        } else {
            format!(
                "- {columns}: personal data, masked for you (j***@example.com, (***) ***-1234) in every query, \
                 filter and sort; seeing them in clear needs the pii:read scope"
            )
        });
    }
    section(&mut lines, "## Query Hints", hints);

    format!("\n\n{}\n", lines.join("\n"))
}

/// The origin's line for a table that is not there (no blank-line prefix, as in the origin).
pub(crate) fn not_found(table: &TableName) -> String {
    format!("**ERROR:** Table '{table}' not found\n")
}

/// A blank line, the heading and the lines; nothing at all when there are no lines.
fn section(lines: &mut Vec<String>, heading: &str, body: Vec<String>) {
    if !body.is_empty() {
        lines.extend([String::new(), heading.to_owned()]);
        lines.extend(body);
    }
}

/// Comments may span lines; a block keeps each note on one.
fn one_line(text: &str) -> String {
    text.split_whitespace().collect::<Vec<_>>().join(" ")
}
