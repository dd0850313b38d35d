//! The benchmark baseline: an axum server on the same hyper stack as shroud that answers every
//! request with a fixed JSON body read from a file. `scripts/bench.sh` measures shroud against it.
//!
//! Usage: trivial ADDR BODY_FILE

use axum::http::header;
use axum::Router;
use std::sync::Arc;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let addr = args.next().ok_or("usage: trivial ADDR BODY_FILE")?;
    let body = Arc::new(std::fs::read(
        args.next().ok_or("usage: trivial ADDR BODY_FILE")?,
    )?);
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    rt.block_on(async move {
        let app = Router::new().fallback(move || {
            let body = body.clone();
            async move {
                (
                    [(header::CONTENT_TYPE, "application/json")],
                    (*body).clone(),
                )
            }
        });
        let listener = tokio::net::TcpListener::bind(&addr).await?;
        axum::serve(listener, app).await?;
        Ok::<_, Box<dyn std::error::Error>>(())
    })
}
