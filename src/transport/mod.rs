//! How clients reach the director: HTTP (`/mcp`, `/sse`) and stdio.

pub mod http;
pub mod listen;
pub mod stateless;
pub mod stdio;
