//! Integration tests of bascule-admin: the service against a real store (SQLite always,
//! PostgreSQL too when `BASCULE_TEST_POSTGRES_URL` is set, as `scripts/test.sh` does), the
//! router through `tower::ServiceExt::oneshot`, and the OpenAPI document against `ROUTES`.
#![allow(clippy::unwrap_used, clippy::panic, missing_docs, unreachable_pub)]

mod common;
mod openapi;
mod router;
mod service;
