//! Tables of custom resources: Name plus the version's
//! `additionalPrinterColumns` (Age when it declares none), as upstream's
//! CRD table convertor. Built on the generic table (metadata, row objects)
//! with the cells and column definitions replaced.

use chrono::Utc;
use rkube_tables::IncludeObject;
use serde_json::{Value, json};

use super::{CustomResource, PrinterColumn};

fn definitions(cr: &CustomResource) -> Value {
    let mut defs = vec![json!({
        "name": "Name",
        "type": "string",
        "format": "name",
        "description": rkube_tables::NAME_DESC,
        "priority": 0,
    })];
    defs.extend(cr.columns.iter().map(|c| {
        json!({
            "name": c.name,
            "type": c.type_,
            "format": c.format,
            "description": c.description,
            "priority": c.priority,
        })
    }));
    Value::Array(defs)
}

/// A cell as upstream's `cellForJSONValue`: typed for numbers, booleans
/// and dates, printed for strings, null when absent or of the wrong type.
fn cell(c: &PrinterColumn, obj: &Value) -> Value {
    let Some(v) = c.path.first(obj) else {
        return Value::Null;
    };
    match c.type_.as_str() {
        "string" => match v {
            Value::String(s) => json!(s),
            Value::Null => Value::Null,
            other => json!(other.to_string()),
        },
        "integer" => match v.as_i64().or_else(|| v.as_f64().map(|f| f as i64)) {
            Some(n) => json!(n),
            None => Value::Null,
        },
        "number" if v.is_number() => v.clone(),
        "boolean" if v.is_boolean() => v.clone(),
        // Dates are shown as ages, as upstream's
        // ConvertToHumanReadableDateType.
        "date" => match v.as_str() {
            Some(t) => match rkube_tables::duration::parse_time(t) {
                Some(t) => json!(rkube_tables::human_duration(Utc::now() - t)),
                None => json!("<invalid>"),
            },
            None => Value::Null,
        },
        _ => Value::Null,
    }
}

fn cells(cr: &CustomResource, obj: &Value) -> Value {
    let mut out = vec![json!(crate::meta::name(obj).unwrap_or_default())];
    out.extend(cr.columns.iter().map(|c| cell(c, obj)));
    Value::Array(out)
}

fn replace_cells(cr: &CustomResource, table: &mut Value, objs: &[&Value]) {
    if let Some(rows) = table.get_mut("rows").and_then(Value::as_array_mut) {
        for (row, obj) in rows.iter_mut().zip(objs) {
            row["cells"] = cells(cr, obj);
        }
    }
}

/// A Table of a list of custom resources.
pub fn table(
    cr: &CustomResource,
    objs: &[Value],
    include: IncludeObject,
    list_meta: Value,
) -> Value {
    let mut t = rkube_tables::table(&cr.group, "", objs, include, list_meta, Utc::now());
    t["columnDefinitions"] = definitions(cr);
    if t["rows"].is_null() {
        t["rows"] = json!([]);
    }
    replace_cells(cr, &mut t, &objs.iter().collect::<Vec<_>>());
    t
}

/// A one-row Table (a GET, or a watch event; column definitions only with
/// the first event).
pub fn row_table(
    cr: &CustomResource,
    obj: &Value,
    include: IncludeObject,
    with_columns: bool,
) -> Value {
    let mut t = rkube_tables::row_table(&cr.group, "", obj, include, with_columns, Utc::now());
    if with_columns {
        t["columnDefinitions"] = definitions(cr);
    }
    replace_cells(cr, &mut t, &[obj]);
    t
}
