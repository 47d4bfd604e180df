//! The MCP face of zava-mcp: the server handler and its tools, transport-independent (HTTP and stdio both
//! serve [`server::ZavaServer`]).

pub mod output;
pub mod server;
mod text;
