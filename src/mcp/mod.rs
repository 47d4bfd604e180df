//! The MCP face of zava-mcp: the server handler and its tools, transport-independent (HTTP and stdio both
//! serve [`server::ZavaServer`]).

mod calls;
pub(crate) mod context;
pub mod output;
mod record;
pub mod server;
mod text;
