//! `ovsdb-server`'s database: the `Open_vSwitch` row and the `hw-offload` mutation.

use super::rpc::JsonRpc;
use super::*;
use crate::paths::Root;
use serde_json::{json, Value};
use std::collections::BTreeMap;
use std::path::Path;

/// The `Open_vSwitch` table's single row, as far as vflag cares.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct OpenVswitch {
    pub uuid: String,
    /// Set by ovs-vswitchd (or its start script); `None` on a database that no daemon has
    /// touched yet.
    pub ovs_version: Option<String>,
    pub db_version: Option<String>,
    pub other_config: BTreeMap<String, String>,
}

impl OpenVswitch {
    /// `other_config:hw-offload` as ovs-vswitchd reads it: only the value "true" enables it.
    pub fn hw_offload(&self) -> bool {
        self.other_config
            .get("hw-offload")
            .is_some_and(|v| v.eq_ignore_ascii_case("true"))
    }

    /// The parsed `ovs_version`, if set and well-formed.
    pub fn version(&self) -> Option<OvsVersion> {
        self.ovs_version.as_deref().and_then(OvsVersion::parse)
    }
}

/// A synchronous OVSDB client (RFC 7047) over a unix socket.
pub struct OvsdbClient {
    rpc: JsonRpc,
}

/// Decode an OVSDB `<string>` atom or a 0/1-element `["set", [...]]` (optional column).
fn opt_string(v: Option<&Value>) -> Option<String> {
    match v? {
        Value::String(s) => Some(s.clone()),
        Value::Array(a) if a.len() == 2 && a[0] == "set" => match a[1].as_array()?.as_slice() {
            [Value::String(s)] => Some(s.clone()),
            _ => None,
        },
        _ => None,
    }
}

/// Decode `["map", [[k, v], ...]]` with string keys and values.
fn string_map(v: Option<&Value>) -> Result<BTreeMap<String, String>, String> {
    let mut out = BTreeMap::new();
    let Some(v) = v else { return Ok(out) };
    let pairs = match v.as_array().map(Vec::as_slice) {
        Some([tag, Value::Array(pairs)]) if tag == "map" => pairs,
        _ => return Err(format!("expected [\"map\", [...]], got {v}")),
    };
    for p in pairs {
        match p.as_array().map(Vec::as_slice) {
            Some([Value::String(k), Value::String(val)]) => {
                out.insert(k.clone(), val.clone());
            }
            _ => return Err(format!("bad map pair {p}")),
        }
    }
    Ok(out)
}

impl OvsdbClient {
    /// Connect to `path` (e.g. [`DEFAULT_DB_SOCK`]); `timeout` bounds the connect and, later,
    /// each call.
    pub fn connect(path: impl AsRef<Path>, timeout: Duration) -> Result<Self, OvsError> {
        Ok(OvsdbClient {
            rpc: JsonRpc::connect(path.as_ref(), timeout)?,
        })
    }

    /// Connect to [`DEFAULT_DB_SOCK`] under `root`.
    pub fn connect_default(root: &Root, timeout: Duration) -> Result<Self, OvsError> {
        Self::connect(root.path(DEFAULT_DB_SOCK), timeout)
    }

    pub fn path(&self) -> &Path {
        &self.rpc.path
    }

    /// A raw JSON-RPC call (`list_dbs`, `get_schema`, `transact`, ...).
    pub fn call(&mut self, method: &str, params: Value) -> Result<Value, OvsError> {
        self.rpc.call(method, params)
    }

    /// `list_dbs`.
    pub fn list_dbs(&mut self) -> Result<Vec<String>, OvsError> {
        let v = self.call("list_dbs", json!([]))?;
        serde_json::from_value(v)
            .map_err(|e| OvsError::Protocol(self.rpc.path.clone(), e.to_string()))
    }

    /// The schema version of the `Open_vSwitch` database (what `ovs-vsctl --version` prints as
    /// "DB Schema"), from `get_schema`.
    pub fn schema_version(&mut self) -> Result<String, OvsError> {
        let v = self.call("get_schema", json!([DB_NAME]))?;
        v.get("version")
            .and_then(Value::as_str)
            .map(str::to_string)
            .ok_or_else(|| {
                OvsError::Protocol(self.rpc.path.clone(), "schema without version".into())
            })
    }

    /// `transact` on the Open_vSwitch database; per-operation errors become `Err(Rpc)`.
    pub fn transact(&mut self, ops: Vec<Value>) -> Result<Vec<Value>, OvsError> {
        let mut params = vec![json!(DB_NAME)];
        params.extend(ops);
        let v = self.call("transact", Value::Array(params))?;
        let Value::Array(results) = v else {
            return Err(OvsError::Protocol(
                self.rpc.path.clone(),
                format!("transact result is not an array: {v}"),
            ));
        };
        for r in &results {
            if let Some(err) = r.get("error").filter(|e| !e.is_null()) {
                let details = r.get("details").and_then(Value::as_str).unwrap_or("");
                return Err(OvsError::Rpc {
                    path: self.rpc.path.clone(),
                    method: "transact".into(),
                    error: format!(
                        "{}{}{}",
                        err.as_str().unwrap_or(&err.to_string()),
                        if details.is_empty() { "" } else { ": " },
                        details
                    ),
                });
            }
        }
        Ok(results)
    }

    /// Read the `Open_vSwitch` row.
    pub fn open_vswitch(&mut self) -> Result<OpenVswitch, OvsError> {
        let res = self.transact(vec![json!({
            "op": "select",
            "table": "Open_vSwitch",
            "where": [],
            "columns": ["_uuid", "ovs_version", "db_version", "other_config"],
        })])?;
        let path = self.rpc.path.clone();
        let rows = res
            .first()
            .and_then(|r| r.get("rows"))
            .and_then(Value::as_array)
            .ok_or_else(|| {
                OvsError::Protocol(path.clone(), "select returned no rows array".into())
            })?;
        let row = rows.first().ok_or_else(|| OvsError::NoRow(path.clone()))?;
        let uuid = match row
            .get("_uuid")
            .and_then(Value::as_array)
            .map(Vec::as_slice)
        {
            Some([tag, Value::String(u)]) if tag == "uuid" => u.clone(),
            _ => {
                return Err(OvsError::Protocol(
                    path,
                    format!("row without _uuid: {row}"),
                ))
            }
        };
        Ok(OpenVswitch {
            uuid,
            ovs_version: opt_string(row.get("ovs_version")),
            db_version: opt_string(row.get("db_version")),
            other_config: string_map(row.get("other_config"))
                .map_err(|e| OvsError::Protocol(path.clone(), e))?,
        })
    }

    /// Set `other_config:<key>=<value>` in one atomic transaction that leaves every other key
    /// alone (`mutate`: delete the key, then insert the new pair; an `insert` alone would not
    /// replace an existing value).
    pub fn set_other_config(&mut self, key: &str, value: &str) -> Result<(), OvsError> {
        let res = self.transact(vec![
            json!({
                "op": "mutate",
                "table": "Open_vSwitch",
                "where": [],
                "mutations": [
                    ["other_config", "delete", ["set", [key]]],
                    ["other_config", "insert", ["map", [[key, value]]]],
                ],
            }),
            json!({"op": "comment", "comment": format!("vflag: set other_config:{key}={value}")}),
        ])?;
        match res
            .first()
            .and_then(|r| r.get("count"))
            .and_then(Value::as_u64)
        {
            Some(0) => Err(OvsError::NoRow(self.rpc.path.clone())),
            Some(_) => Ok(()),
            None => Err(OvsError::Protocol(
                self.rpc.path.clone(),
                format!("mutate result without count: {res:?}"),
            )),
        }
    }

    /// Make sure `other_config:hw-offload` is "true". Returns whether it changed. Open vSwitch
    /// documents that enabling takes effect in a running ovs-vswitchd, while turning it off
    /// again needs a daemon restart (older releases needed a restart for either).
    pub fn enable_hw_offload(&mut self) -> Result<bool, OvsError> {
        if self.open_vswitch()?.hw_offload() {
            return Ok(false);
        }
        self.set_other_config("hw-offload", "true")?;
        Ok(true)
    }
}

impl std::fmt::Debug for OvsdbClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OvsdbClient")
            .field("path", &self.rpc.path)
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ovsdb_encodings() {
        assert_eq!(
            opt_string(Some(&json!("2.17.0"))).as_deref(),
            Some("2.17.0")
        );
        assert_eq!(opt_string(Some(&json!(["set", []]))), None);
        assert_eq!(
            opt_string(Some(&json!(["set", ["x"]]))).as_deref(),
            Some("x")
        );
        let m = string_map(Some(&json!(["map", [["hw-offload", "true"], ["a", "b"]]]))).unwrap();
        assert_eq!(m.len(), 2);
        assert_eq!(m["hw-offload"], "true");
        assert!(string_map(Some(&json!(["set", []]))).is_err());
        assert!(string_map(None).unwrap().is_empty());
    }

    #[test]
    fn hw_offload_value() {
        let mut ov = OpenVswitch {
            uuid: "u".into(),
            ovs_version: None,
            db_version: None,
            other_config: BTreeMap::new(),
        };
        assert!(!ov.hw_offload());
        ov.other_config.insert("hw-offload".into(), "false".into());
        assert!(!ov.hw_offload());
        ov.other_config.insert("hw-offload".into(), "true".into());
        assert!(ov.hw_offload());
    }
}
