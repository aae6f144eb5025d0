//! Decoding of `application/vnd.kubernetes.protobuf` request bodies into JSON objects.
//!
//! client-go's generated (typed) clients send protobuf: kubectl's imperative commands
//! (`create namespace`, `create token`, `auth can-i`, …) and helm's release storage do. The
//! envelope is `k8s\0` followed by a `runtime.Unknown` whose `raw` holds the object's
//! message; field numbers and JSON names come from [`super::protobuf_schema`]. Responses are
//! always JSON, which those clients accept as well (their Accept header lists it).
//!
//! Go's JSON encoding drops empty strings (`omitempty`) while protobuf carries them, so
//! empty singular strings are dropped here too. Special well-known types: `Time`,
//! `MicroTime`, `Duration`, `Quantity`, `IntOrString`, `RawExtension`, `FieldsV1`, `JSON`
//! and the `JSONSchemaPropsOr*` unions.

use base64::Engine;
use serde_json::{Map, Value, json};

use super::protobuf_schema::MESSAGES;

/// The envelope's magic prefix.
pub const MAGIC: &[u8] = b"k8s\x00";

/// Wire kind of a field.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// `string`.
    String,
    /// `bytes` (base64 in JSON).
    Bytes,
    /// `bool`.
    Bool,
    /// `int32`.
    Int32,
    /// `int64`.
    Int64,
    /// `double`.
    Double,
    /// A nested message by name.
    Message(&'static str),
    /// `map<string, …>`.
    Map(MapValue),
}

/// Value type of a map field.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MapValue {
    /// `map<string, string>`.
    String,
    /// `map<string, bytes>`.
    Bytes,
    /// `map<string, Message>`.
    Message(&'static str),
}

/// One field of a message.
#[derive(Debug, Clone, Copy)]
pub struct Field {
    /// Field number.
    pub tag: u32,
    /// JSON name; empty for embedded structs whose fields are inlined.
    pub json: &'static str,
    /// Wire kind.
    pub kind: Kind,
    /// `repeated`.
    pub repeated: bool,
}

/// A message's fields.
#[derive(Debug, Clone, Copy)]
pub struct Message {
    /// Module-qualified name, e.g. `api.core.v1.Pod`.
    pub name: &'static str,
    /// Fields.
    pub fields: &'static [Field],
}

/// Why a protobuf body could not be decoded.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("{0}")]
pub struct ProtoError(pub String);

fn err(message: impl Into<String>) -> ProtoError {
    ProtoError(message.into())
}

fn find(name: &str) -> Option<&'static Message> {
    MESSAGES
        .binary_search_by(|m| m.name.cmp(name))
        .ok()
        .map(|i| &MESSAGES[i])
}

struct Reader<'a> {
    bytes: &'a [u8],
    pos: usize,
}

impl<'a> Reader<'a> {
    fn done(&self) -> bool {
        self.pos >= self.bytes.len()
    }

    fn varint(&mut self) -> Result<u64, ProtoError> {
        let mut value = 0u64;
        for shift in (0..64).step_by(7) {
            let byte = *self
                .bytes
                .get(self.pos)
                .ok_or_else(|| err("truncated varint"))?;
            self.pos += 1;
            value |= u64::from(byte & 0x7f) << shift;
            if byte & 0x80 == 0 {
                return Ok(value);
            }
        }
        Err(err("varint too long"))
    }

    fn take(&mut self, n: usize) -> Result<&'a [u8], ProtoError> {
        let end = self
            .pos
            .checked_add(n)
            .filter(|e| *e <= self.bytes.len())
            .ok_or_else(|| err("truncated field"))?;
        let slice = &self.bytes[self.pos..end];
        self.pos = end;
        Ok(slice)
    }

    fn length_delimited(&mut self) -> Result<&'a [u8], ProtoError> {
        let len = usize::try_from(self.varint()?).map_err(|_| err("length too large"))?;
        self.take(len)
    }

    fn skip(&mut self, wire: u64) -> Result<(), ProtoError> {
        match wire {
            0 => self.varint().map(|_| ()),
            1 => self.take(8).map(|_| ()),
            2 => self.length_delimited().map(|_| ()),
            5 => self.take(4).map(|_| ()),
            other => Err(err(format!("unsupported wire type {other}"))),
        }
    }
}

fn scalar(kind: Kind, wire: u64, reader: &mut Reader<'_>) -> Result<Value, ProtoError> {
    Ok(match (kind, wire) {
        (Kind::String, 2) => {
            json!(
                std::str::from_utf8(reader.length_delimited()?)
                    .map_err(|_| err("string is not UTF-8"))?
            )
        }
        (Kind::Bytes, 2) => {
            json!(base64::engine::general_purpose::STANDARD.encode(reader.length_delimited()?))
        }
        (Kind::Bool, 0) => json!(reader.varint()? != 0),
        (Kind::Int32, 0) => json!(reader.varint()? as i64 as i32),
        (Kind::Int64, 0) => json!(reader.varint()? as i64),
        (Kind::Double, 1) => {
            let raw = reader.take(8)?;
            let mut array = [0u8; 8];
            array.copy_from_slice(raw);
            json!(f64::from_le_bytes(array))
        }
        (Kind::Message(name), 2) => decode_message(reader.length_delimited()?, name)?,
        (kind, wire) => return Err(err(format!("wire type {wire} does not fit {kind:?}"))),
    })
}

fn map_entry(bytes: &[u8], value_kind: MapValue) -> Result<(String, Value), ProtoError> {
    let mut reader = Reader { bytes, pos: 0 };
    let mut key = String::new();
    let mut value = match value_kind {
        MapValue::String | MapValue::Bytes => json!(""),
        MapValue::Message(_) => json!({}),
    };
    while !reader.done() {
        let header = reader.varint()?;
        let (tag, wire) = (header >> 3, header & 7);
        match tag {
            1 => {
                key = scalar(Kind::String, wire, &mut reader)?
                    .as_str()
                    .unwrap_or("")
                    .to_string()
            }
            2 => {
                let kind = match value_kind {
                    MapValue::String => Kind::String,
                    MapValue::Bytes => Kind::Bytes,
                    MapValue::Message(name) => Kind::Message(name),
                };
                value = scalar(kind, wire, &mut reader)?;
            }
            _ => reader.skip(wire)?,
        }
    }
    Ok((key, value))
}

fn go_duration(nanos: i64) -> String {
    let mut rest = nanos.unsigned_abs();
    let sign = if nanos < 0 { "-" } else { "" };
    let hours = rest / 3_600_000_000_000;
    rest %= 3_600_000_000_000;
    let minutes = rest / 60_000_000_000;
    rest %= 60_000_000_000;
    let seconds = rest as f64 / 1e9;
    if hours > 0 {
        format!("{sign}{hours}h{minutes}m{seconds}s")
    } else if minutes > 0 {
        format!("{sign}{minutes}m{seconds}s")
    } else {
        format!("{sign}{seconds}s")
    }
}

fn fields_by_tag(bytes: &[u8]) -> Result<Vec<(u64, u64, Reader<'_>)>, ProtoError> {
    let mut reader = Reader { bytes, pos: 0 };
    let mut out = Vec::new();
    while !reader.done() {
        let header = reader.varint()?;
        let (tag, wire) = (header >> 3, header & 7);
        let start = reader.pos;
        reader.skip(wire)?;
        out.push((
            tag,
            wire,
            Reader {
                bytes: &bytes[..reader.pos],
                pos: start,
            },
        ));
    }
    Ok(out)
}

fn special(bytes: &[u8], name: &str) -> Result<Option<Value>, ProtoError> {
    let simple = |kind: Kind, tag: u64| -> Result<Option<Value>, ProtoError> {
        for (field, wire, mut reader) in fields_by_tag(bytes)? {
            if field == tag {
                return scalar(kind, wire, &mut reader).map(Some);
            }
        }
        Ok(None)
    };
    let value = match name {
        "apimachinery.pkg.apis.meta.v1.Time" | "apimachinery.pkg.apis.meta.v1.MicroTime" => {
            let seconds = simple(Kind::Int64, 1)?
                .and_then(|v| v.as_i64())
                .unwrap_or(0);
            let nanos = simple(Kind::Int32, 2)?
                .and_then(|v| v.as_i64())
                .unwrap_or(0);
            if seconds == 0 && nanos == 0 {
                Value::Null
            } else {
                let time =
                    jiff::Timestamp::new(seconds, nanos as i32).map_err(|e| err(e.to_string()))?;
                if name.ends_with("MicroTime") {
                    json!(time.strftime("%Y-%m-%dT%H:%M:%S.%6fZ").to_string())
                } else {
                    json!(time.strftime("%Y-%m-%dT%H:%M:%SZ").to_string())
                }
            }
        }
        "apimachinery.pkg.apis.meta.v1.Duration" => {
            json!(go_duration(
                simple(Kind::Int64, 1)?
                    .and_then(|v| v.as_i64())
                    .unwrap_or(0)
            ))
        }
        "apimachinery.pkg.api.resource.Quantity" => simple(Kind::String, 1)?.unwrap_or(json!("0")),
        "apimachinery.pkg.util.intstr.IntOrString" => {
            let is_string = simple(Kind::Int64, 1)?
                .and_then(|v| v.as_i64())
                .unwrap_or(0)
                == 1;
            if is_string {
                simple(Kind::String, 3)?.unwrap_or(json!(""))
            } else {
                simple(Kind::Int32, 2)?.unwrap_or(json!(0))
            }
        }
        "apimachinery.pkg.runtime.RawExtension"
        | "apimachinery.pkg.apis.meta.v1.FieldsV1"
        | "apiextensions_apiserver.pkg.apis.apiextensions.v1.JSON" => {
            let raw = simple(Kind::Bytes, 1)?
                .and_then(|v| v.as_str().map(str::to_string))
                .and_then(|b64| base64::engine::general_purpose::STANDARD.decode(b64).ok())
                .unwrap_or_default();
            if raw.is_empty() {
                Value::Null
            } else {
                serde_json::from_slice(&raw).map_err(|e| err(e.to_string()))?
            }
        }
        "apiextensions_apiserver.pkg.apis.apiextensions.v1.JSONSchemaPropsOrArray" => {
            let schema = "apiextensions_apiserver.pkg.apis.apiextensions.v1.JSONSchemaProps";
            let mut single = None;
            let mut many = Vec::new();
            for (tag, wire, mut reader) in fields_by_tag(bytes)? {
                match tag {
                    1 => single = Some(scalar(Kind::Message(schema), wire, &mut reader)?),
                    2 => many.push(scalar(Kind::Message(schema), wire, &mut reader)?),
                    _ => {}
                }
            }
            if many.is_empty() {
                single.unwrap_or(Value::Null)
            } else {
                Value::Array(many)
            }
        }
        "apiextensions_apiserver.pkg.apis.apiextensions.v1.JSONSchemaPropsOrBool" => {
            let schema = "apiextensions_apiserver.pkg.apis.apiextensions.v1.JSONSchemaProps";
            match simple(Kind::Message(schema), 2)? {
                Some(value) => value,
                None => simple(Kind::Bool, 1)?.unwrap_or(json!(false)),
            }
        }
        "apiextensions_apiserver.pkg.apis.apiextensions.v1.JSONSchemaPropsOrStringArray" => {
            let schema = "apiextensions_apiserver.pkg.apis.apiextensions.v1.JSONSchemaProps";
            let mut single = None;
            let mut strings = Vec::new();
            for (tag, wire, mut reader) in fields_by_tag(bytes)? {
                match tag {
                    1 => single = Some(scalar(Kind::Message(schema), wire, &mut reader)?),
                    2 => strings.push(scalar(Kind::String, wire, &mut reader)?),
                    _ => {}
                }
            }
            if strings.is_empty() {
                single.unwrap_or(Value::Null)
            } else {
                Value::Array(strings)
            }
        }
        _ => return Ok(None),
    };
    Ok(Some(value))
}

/// Decodes one message into its JSON form.
pub fn decode_message(bytes: &[u8], name: &str) -> Result<Value, ProtoError> {
    if let Some(value) = special(bytes, name)? {
        return Ok(value);
    }
    let message = find(name).ok_or_else(|| err(format!("no protobuf schema for {name}")))?;
    let mut map = Map::new();
    let mut reader = Reader { bytes, pos: 0 };
    while !reader.done() {
        let header = reader.varint()?;
        let (tag, wire) = (header >> 3, header & 7);
        let Some(field) = message.fields.iter().find(|f| u64::from(f.tag) == tag) else {
            reader.skip(wire)?;
            continue;
        };
        match field.kind {
            Kind::Map(value_kind) => {
                let (key, value) = map_entry(reader.length_delimited()?, value_kind)?;
                let slot = map
                    .entry(field.json.to_string())
                    .or_insert_with(|| json!({}));
                if let Some(object) = slot.as_object_mut() {
                    object.insert(key, value);
                }
            }
            kind if field.json.is_empty() => {
                if let Value::Object(inlined) = scalar(kind, wire, &mut reader)? {
                    map.extend(inlined);
                }
            }
            kind if field.repeated
                && wire == 2
                && matches!(kind, Kind::Bool | Kind::Int32 | Kind::Int64 | Kind::Double) =>
            {
                // Packed repeated scalars.
                let packed = reader.length_delimited()?;
                let mut inner = Reader {
                    bytes: packed,
                    pos: 0,
                };
                let element_wire = if kind == Kind::Double { 1 } else { 0 };
                let slot = map
                    .entry(field.json.to_string())
                    .or_insert_with(|| json!([]));
                while !inner.done() {
                    let value = scalar(kind, element_wire, &mut inner)?;
                    if let Some(items) = slot.as_array_mut() {
                        items.push(value);
                    }
                }
            }
            kind => {
                let value = scalar(kind, wire, &mut reader)?;
                if field.repeated {
                    let slot = map
                        .entry(field.json.to_string())
                        .or_insert_with(|| json!([]));
                    if let Some(items) = slot.as_array_mut() {
                        items.push(value);
                    }
                } else if !(value.is_null() || (kind == Kind::String && value == json!(""))) {
                    map.insert(field.json.to_string(), value);
                }
            }
        }
    }
    Ok(Value::Object(map))
}

fn module_of(group: &str) -> Option<&'static str> {
    Some(match group {
        "" => "api.core",
        "apps" => "api.apps",
        "batch" => "api.batch",
        "coordination.k8s.io" => "api.coordination",
        "rbac.authorization.k8s.io" => "api.rbac",
        "networking.k8s.io" => "api.networking",
        "policy" => "api.policy",
        "authorization.k8s.io" => "api.authorization",
        "authentication.k8s.io" => "api.authentication",
        "events.k8s.io" => "api.events",
        "autoscaling" => "api.autoscaling",
        "apiextensions.k8s.io" => "apiextensions_apiserver.pkg.apis.apiextensions",
        "meta.k8s.io" => "apimachinery.pkg.apis.meta",
        _ => return None,
    })
}

/// Decodes an enveloped protobuf body (`k8s\0` + `runtime.Unknown`) into a JSON object with
/// `apiVersion` and `kind` set.
pub fn decode(body: &[u8]) -> Result<Value, ProtoError> {
    let payload = body
        .strip_prefix(MAGIC)
        .ok_or_else(|| err("protobuf body lacks the k8s envelope prefix"))?;
    let mut api_version = String::new();
    let mut kind = String::new();
    let mut raw: &[u8] = &[];
    let mut reader = Reader {
        bytes: payload,
        pos: 0,
    };
    while !reader.done() {
        let header = reader.varint()?;
        match (header >> 3, header & 7) {
            (1, 2) => {
                let type_meta = reader.length_delimited()?;
                let mut inner = Reader {
                    bytes: type_meta,
                    pos: 0,
                };
                while !inner.done() {
                    let header = inner.varint()?;
                    match (header >> 3, header & 7) {
                        (1, 2) => {
                            api_version =
                                String::from_utf8_lossy(inner.length_delimited()?).into_owned()
                        }
                        (2, 2) => {
                            kind = String::from_utf8_lossy(inner.length_delimited()?).into_owned()
                        }
                        (_, wire) => inner.skip(wire)?,
                    }
                }
            }
            (2, 2) => raw = reader.length_delimited()?,
            (_, wire) => reader.skip(wire)?,
        }
    }
    let (group, version) = match api_version.split_once('/') {
        Some((group, version)) => (group, version),
        None => ("", api_version.as_str()),
    };
    let module =
        module_of(group).ok_or_else(|| err(format!("no protobuf schema for group {group:?}")))?;
    let mut name = format!("{module}.{version}.{kind}");
    if find(&name).is_none() {
        // Options types (DeleteOptions, …) are registered in every group but defined in meta/v1.
        name = format!("apimachinery.pkg.apis.meta.v1.{kind}");
    }
    let mut object = decode_message(raw, &name)?;
    if let Some(map) = object.as_object_mut() {
        map.insert("apiVersion".into(), json!(api_version));
        map.insert("kind".into(), json!(kind));
    }
    Ok(object)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn varint(mut n: u64, out: &mut Vec<u8>) {
        loop {
            let byte = (n & 0x7f) as u8;
            n >>= 7;
            if n == 0 {
                out.push(byte);
                return;
            }
            out.push(byte | 0x80);
        }
    }

    fn field(tag: u64, bytes: &[u8], out: &mut Vec<u8>) {
        varint(tag << 3 | 2, out);
        varint(bytes.len() as u64, out);
        out.extend_from_slice(bytes);
    }

    #[test]
    fn schema_is_sorted() {
        assert!(MESSAGES.windows(2).all(|w| w[0].name < w[1].name));
        assert!(find("api.core.v1.Pod").is_some());
    }

    #[test]
    fn decodes_an_enveloped_secret() {
        let mut type_meta = Vec::new();
        field(1, b"v1", &mut type_meta);
        field(2, b"Secret", &mut type_meta);
        let mut metadata = Vec::new();
        field(1, b"s", &mut metadata);
        field(3, b"", &mut metadata);
        let mut labels = Vec::new();
        field(1, b"app", &mut labels);
        field(2, b"x", &mut labels);
        field(11, &labels, &mut metadata);
        let mut entry = Vec::new();
        field(1, b"k", &mut entry);
        field(2, b"hi", &mut entry);
        let mut secret = Vec::new();
        field(1, &metadata, &mut secret);
        field(2, &entry, &mut secret);
        field(3, b"Opaque", &mut secret);
        let mut unknown = Vec::new();
        field(1, &type_meta, &mut unknown);
        field(2, &secret, &mut unknown);
        let mut body = MAGIC.to_vec();
        body.extend(unknown);
        let decoded = decode(&body).unwrap();
        assert_eq!(
            decoded,
            json!({"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "s", "labels": {"app": "x"}},
                   "data": {"k": "aGk="}, "type": "Opaque"})
        );
    }
}
