//! The HTTP and WebSocket transport: one axum route that takes JSON-RPC over POST and upgrades
//! GET requests to WebSocket connections with `eth_subscribe` notifications.

use std::sync::Arc;

use axum::{
    Router,
    body::Bytes,
    extract::{
        DefaultBodyLimit, State,
        rejection::BytesRejection,
        ws::{Message, WebSocket, WebSocketUpgrade},
    },
    http::{StatusCode, header},
    response::{IntoResponse, Response},
    routing::get,
};
use serde_json::Value;
use tokio::sync::broadcast::error::RecvError;

use crate::rpc::{
    Api, Session,
    wire::{self, RpcError},
};

pub(crate) fn router(api: Arc<Api>, max_body_bytes: usize) -> Router {
    Router::new()
        .route("/", get(ws_upgrade).post(http_call).options(preflight))
        .layer(DefaultBodyLimit::max(max_body_bytes))
        // Any origin may call: dapp pages served from another port talk to the chain directly.
        .layer(axum::middleware::map_response(allow_any_origin))
        .with_state(api)
}

async fn allow_any_origin(mut response: Response) -> Response {
    response
        .headers_mut()
        .insert(header::ACCESS_CONTROL_ALLOW_ORIGIN, header::HeaderValue::from_static("*"));
    response
}

/// CORS preflight: browsers ask before POSTing JSON from another origin.
async fn preflight() -> Response {
    (
        StatusCode::NO_CONTENT,
        [
            (header::ACCESS_CONTROL_ALLOW_METHODS, "GET, POST, OPTIONS"),
            (header::ACCESS_CONTROL_ALLOW_HEADERS, "content-type"),
            (header::ACCESS_CONTROL_MAX_AGE, "86400"),
        ],
    )
        .into_response()
}

fn json_response(status: StatusCode, value: &Value) -> Response {
    (status, [(header::CONTENT_TYPE, "application/json")], value.to_string()).into_response()
}

async fn http_call(State(api): State<Arc<Api>>, body: Result<Bytes, BytesRejection>) -> Response {
    let body = match body {
        Ok(body) => body,
        Err(rejection) => {
            let status = rejection.status();
            let error = wire::failure(
                Value::Null,
                RpcError::new(
                    wire::INVALID_REQUEST,
                    format!("request rejected: {}", rejection.body_text()),
                ),
            );
            return json_response(status, &error);
        }
    };
    match api.respond_payload(&body, None) {
        Some(response) => json_response(StatusCode::OK, &response),
        None => StatusCode::NO_CONTENT.into_response(),
    }
}

async fn ws_upgrade(State(api): State<Arc<Api>>, upgrade: WebSocketUpgrade) -> Response {
    upgrade.on_upgrade(move |socket| ws_session(socket, api))
}

async fn ws_session(mut socket: WebSocket, api: Arc<Api>) {
    let mut heads = api.chain().subscribe_heads();
    let mut session = Session::default();
    loop {
        tokio::select! {
            message = socket.recv() => {
                let body = match message {
                    Some(Ok(Message::Text(text))) => Bytes::from(text),
                    Some(Ok(Message::Binary(bytes))) => bytes,
                    Some(Ok(Message::Ping(_) | Message::Pong(_))) => continue,
                    Some(Ok(Message::Close(_)) | Err(_)) | None => break,
                };
                if let Some(response) = api.respond_payload(&body, Some(&mut session))
                    && socket.send(Message::Text(response.to_string().into())).await.is_err()
                {
                    break;
                }
            }
            block = heads.recv() => match block {
                Ok(block) => {
                    for notification in session.notifications(&block) {
                        if socket.send(Message::Text(notification.to_string().into())).await.is_err() {
                            return;
                        }
                    }
                }
                Err(RecvError::Lagged(missed)) => {
                    tracing::warn!(missed, "WebSocket client too slow; skipped block notifications");
                }
                Err(RecvError::Closed) => break,
            },
        }
    }
}
