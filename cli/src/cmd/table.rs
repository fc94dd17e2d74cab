//! `--output table`: a list (an array of records, or the first such field of an
//! answer, like a page's `items`) as aligned columns with the answer's other fields
//! below it; a single record as field/value rows. Nested values are shown as compact
//! JSON, absent ones as `-`.

use serde_json::{Map, Value};

pub fn render(v: &Value) -> String {
    match v {
        Value::Array(items) => rows(items),
        Value::Object(map) => match list_field(map) {
            Some((name, items)) => {
                let mut out = rows(items);
                for (k, v) in map.iter().filter(|(k, _)| *k != name) {
                    out += &format!("{k}: {}\n", cell(v));
                }
                out
            }
            None => grid(
                &["field".to_string(), "value".to_string()],
                &map.iter()
                    .map(|(k, v)| vec![k.clone(), cell(v)])
                    .collect::<Vec<_>>(),
            ),
        },
        other => format!("{}\n", cell(other)),
    }
}

/// The first field that holds a non-empty array of records, or else the first such
/// field of a field (the validator set's `current.validators`).
fn list_field(map: &Map<String, Value>) -> Option<(&String, &Vec<Value>)> {
    fn records(v: &Value) -> Option<&Vec<Value>> {
        match v {
            Value::Array(a) if !a.is_empty() && a.iter().all(Value::is_object) => Some(a),
            _ => None,
        }
    }
    map.iter()
        .find_map(|(k, v)| records(v).map(|a| (k, a)))
        .or_else(|| {
            map.iter().find_map(|(k, v)| {
                v.as_object()
                    .and_then(|inner| inner.values().find_map(records))
                    .map(|a| (k, a))
            })
        })
}

fn rows(items: &[Value]) -> String {
    let mut columns: Vec<String> = Vec::new();
    for item in items {
        if let Value::Object(m) = item {
            for k in m.keys() {
                if !columns.contains(k) {
                    columns.push(k.clone());
                }
            }
        }
    }
    if columns.is_empty() {
        let cells: Vec<Vec<String>> = items.iter().map(|v| vec![cell(v)]).collect();
        return grid(&["value".to_string()], &cells);
    }
    let cells: Vec<Vec<String>> = items
        .iter()
        .map(|item| {
            columns
                .iter()
                .map(|c| cell(item.get(c).unwrap_or(&Value::Null)))
                .collect()
        })
        .collect();
    grid(&columns, &cells)
}

fn cell(v: &Value) -> String {
    match v {
        Value::Null => "-".to_string(),
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

fn grid(headers: &[String], cells: &[Vec<String>]) -> String {
    let mut widths: Vec<usize> = headers.iter().map(|h| h.chars().count()).collect();
    for row in cells {
        for (w, c) in widths.iter_mut().zip(row) {
            *w = (*w).max(c.chars().count());
        }
    }
    let line = |row: &[String]| {
        let padded: Vec<String> = row
            .iter()
            .zip(&widths)
            .map(|(c, w)| format!("{c:<w$}"))
            .collect();
        format!("{}\n", padded.join("  ").trim_end())
    };
    let mut out = line(headers);
    out += &line(&widths.iter().map(|w| "-".repeat(*w)).collect::<Vec<_>>());
    for row in cells {
        out += &line(row);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::render;
    use serde_json::json;

    #[test]
    fn a_page_is_columns_and_a_record_is_rows() {
        let page = json!({
            "items": [{"id": 1, "name": "Acme", "status": "active"}, {"id": 22, "name": "B", "extra": [1]}],
            "next": null,
        });
        assert_eq!(
            render(&page),
            "id  name  status  extra\n--  ----  ------  -----\n1   Acme  active  -\n22  B     -       [1]\nnext: -\n"
        );
        let set = json!({"current": {"validators": [{"power": 1}]}, "pending": null});
        assert_eq!(render(&set), "power\n-----\n1\npending: -\n");
        let set = json!({"current": {"validators": [{"power": 1}]}, "pending": null});
        assert_eq!(render(&set), "power\n-----\n1\npending: -\n");
        let record = json!({"balance": "5", "nonce": 2});
        assert_eq!(
            render(&record),
            "field    value\n-------  -----\nbalance  5\nnonce    2\n"
        );
    }
}
