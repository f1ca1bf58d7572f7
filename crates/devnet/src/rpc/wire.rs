//! JSON-RPC 2.0 wire format: request parsing, responses, error objects and codes.

use serde::Serialize;
use serde_json::{Value, json};

/// Invalid JSON.
pub(crate) const PARSE_ERROR: i64 = -32700;
/// JSON that is not a request object (or an empty batch).
pub(crate) const INVALID_REQUEST: i64 = -32600;
/// No such method.
pub(crate) const METHOD_NOT_FOUND: i64 = -32601;
/// Parameters of the wrong shape or value.
pub(crate) const INVALID_PARAMS: i64 = -32602;
/// A failure of this node, not of the request.
pub(crate) const INTERNAL_ERROR: i64 = -32603;
/// geth's generic server error: rejected transactions, unknown blocks, …
pub(crate) const SERVER_ERROR: i64 = -32000;
/// geth's code for reverted execution (EIP-1474), with the revert data in `data`.
pub(crate) const EXECUTION_ERROR: i64 = 3;

/// A JSON-RPC error object.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub(crate) struct RpcError {
    pub(crate) code: i64,
    pub(crate) message: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) data: Option<Value>,
}

impl RpcError {
    pub(crate) fn new(code: i64, message: impl Into<String>) -> Self {
        Self { code, message: message.into(), data: None }
    }

    pub(crate) fn invalid_params(message: impl Into<String>) -> Self {
        Self::new(INVALID_PARAMS, message)
    }
}

/// A successful response.
pub(crate) fn success(id: Value, result: Value) -> Value {
    json!({ "jsonrpc": "2.0", "id": id, "result": result })
}

/// An error response.
pub(crate) fn failure(id: Value, error: RpcError) -> Value {
    json!({ "jsonrpc": "2.0", "id": id, "error": error })
}

/// One parsed call: its id (absent for notifications), method and params.
#[derive(Debug)]
pub(crate) struct Call {
    pub(crate) id: Option<Value>,
    pub(crate) method: String,
    pub(crate) params: Value,
}

/// Checks that `value` is a request object; the error response is ready to send if not.
pub(crate) fn parse_call(value: Value) -> Result<Call, Value> {
    let Value::Object(mut object) = value else {
        return Err(failure(
            Value::Null,
            RpcError::new(INVALID_REQUEST, "invalid request: expected a JSON object"),
        ));
    };
    let id = object.remove("id");
    let id_for_error = id.clone().unwrap_or(Value::Null);
    if let Some(id) = &id
        && !(id.is_string() || id.is_number() || id.is_null())
    {
        return Err(failure(
            Value::Null,
            RpcError::new(INVALID_REQUEST, format!("invalid request: bad id {id}")),
        ));
    }
    let method = match object.remove("method") {
        Some(Value::String(method)) => method,
        Some(other) => {
            return Err(failure(
                id_for_error,
                RpcError::new(
                    INVALID_REQUEST,
                    format!("invalid request: method must be a string, got {other}"),
                ),
            ));
        }
        None => {
            return Err(failure(
                id_for_error,
                RpcError::new(INVALID_REQUEST, "invalid request: missing method"),
            ));
        }
    };
    let params = object.remove("params").unwrap_or(Value::Null);
    if !(params.is_array() || params.is_null() || params.is_object()) {
        return Err(failure(
            id_for_error,
            RpcError::invalid_params(format!("params must be an array, got {params}")),
        ));
    }
    Ok(Call { id, method, params })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_a_call_and_rejects_non_objects() {
        let call = parse_call(json!({"jsonrpc":"2.0","id":7,"method":"eth_chainId"})).unwrap();
        assert_eq!(call.id, Some(json!(7)));
        assert_eq!(call.method, "eth_chainId");
        assert_eq!(call.params, Value::Null);

        let err = parse_call(json!(42)).unwrap_err();
        assert_eq!(err["error"]["code"], json!(INVALID_REQUEST));
        let err = parse_call(json!({"id":1})).unwrap_err();
        assert_eq!(err["error"]["code"], json!(INVALID_REQUEST));
        assert_eq!(err["id"], json!(1));
        let err = parse_call(json!({"id":1,"method":"x","params":5})).unwrap_err();
        assert_eq!(err["error"]["code"], json!(INVALID_PARAMS));
    }
}
