//! Containers for what publishers send, without transcoding: RTP back into frames
//! ([`assemble`]), frames into codec samples ([`depack`]), samples onto one clock per file
//! ([`timeline`]), and the file formats — fragmented MP4 ([`fmp4`]) and WebM ([`webm`]).
//! Recording (`record/`) and HLS (`hls/`) are built from these; everything here is pure.

pub mod assemble;
pub mod depack;
pub mod fmp4;
pub mod timeline;
pub mod webm;
