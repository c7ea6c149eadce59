//! Shapes of the generated schema table (`schema.rs`).

/// Wire type of a field's value (for maps: of the entry's value; keys are strings).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Ty {
    Str,
    Bytes,
    Bool,
    I32,
    I64,
    U32,
    U64,
    F64,
    F32,
    /// A message: index into `schema::MESSAGES`.
    M(u16),
}

/// Cardinality of a field.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Card {
    /// `optional`: one value, last one wins.
    One,
    /// `repeated`: a JSON array (omitted when empty).
    Rep,
    /// `map<string, ty>` (repeated entry messages, key = 1, value = 2): a JSON object.
    Map,
    /// A Go embedded struct (`json:",inline"`): the message's fields merge into the parent.
    Inline,
}

/// Messages whose JSON form is not a plain object of their fields.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Special {
    None,
    /// metav1.Time {seconds = 1, nanos = 2}: RFC 3339, seconds precision; empty = null.
    Time,
    /// metav1.MicroTime: RFC 3339 with 6 fractional digits.
    MicroTime,
    /// metav1.Duration {duration = 1} (ns): Go `time.Duration.String()`.
    Duration,
    /// {raw = 1}: embedded JSON document (metav1.FieldsV1, apiextensions JSON).
    RawJson,
    /// runtime.RawExtension {raw = 1}: embedded JSON or a `k8s\0` protobuf envelope.
    RawExtension,
    /// A named `[]string` ({items = 1}): ExtraValue, Verbs.
    StringArray,
    /// resource.Quantity {string = 1}.
    Quantity,
    /// intstr.IntOrString {type = 1, intVal = 2, strVal = 3}.
    IntOrString,
    /// apiextensions JSONSchemaPropsOrArray {schema = 1, jSONSchemas = 2}.
    SchemaOrArray,
    /// apiextensions JSONSchemaPropsOrBool {allows = 1, schema = 2}.
    SchemaOrBool,
    /// apiextensions JSONSchemaPropsOrStringArray {schema = 1, property = 2}.
    SchemaOrStringArray,
}

/// One field of a message.
#[derive(Clone, Copy, Debug)]
pub struct Field {
    pub tag: u32,
    /// JSON name ("" for `Card::Inline`).
    pub json: &'static str,
    pub ty: Ty,
    pub card: Card,
    /// Drop a zero value ("", 0, false, zero Time) of a `Card::One` field: a non-pointer
    /// Go field with `omitempty` (the Go marshaller writes those unconditionally).
    pub omit_zero: bool,
}

/// One message type.
#[derive(Clone, Copy, Debug)]
pub struct Message {
    /// k8s-pb path, e.g. `api::core::v1::ConfigMap`.
    pub name: &'static str,
    pub special: Special,
    /// Sorted by tag.
    pub fields: &'static [Field],
}

impl Message {
    pub fn field(&self, tag: u32) -> Option<&'static Field> {
        self.fields
            .binary_search_by_key(&tag, |f| f.tag)
            .ok()
            .map(|i| &self.fields[i])
    }
}
