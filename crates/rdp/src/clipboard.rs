//! Text-only clipboard backend for cliprdr.
//!
//! IronRDP's `Cliprdr` calls the backend synchronously while it processes channel data; the
//! backend only queues what it was told, and the session loop acts on the queue afterwards
//! (it owns the `ActiveStage` needed to send anything).

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};

use ironrdp_cliprdr::backend::CliprdrBackend;
use ironrdp_cliprdr::pdu::{
    ClipboardFormat, ClipboardFormatId, ClipboardGeneralCapabilityFlags, FileContentsRequest, FileContentsResponse,
    FormatDataRequest, FormatDataResponse, LockDataId,
};

/// What the session loop has to do for the clipboard.
#[derive(Debug)]
pub(crate) enum ClipAction {
    /// Send our format list (the local text, if any).
    AdvertiseLocal,
    /// The server has new content: ask for it in this format.
    Paste(ClipboardFormatId),
    /// The server asks for our data in this format.
    ProvideData(ClipboardFormatId),
    /// Text arrived from the server.
    RemoteText(String),
    /// The server answered a paste with an error (nothing to report upwards).
    RemoteFailed,
}

pub(crate) type ClipQueue = Arc<Mutex<VecDeque<ClipAction>>>;

#[derive(Debug)]
pub(crate) struct TextClipboard {
    queue: ClipQueue,
    /// Format of the paste in flight, to decode the response.
    pending: Option<ClipboardFormatId>,
}

impl TextClipboard {
    pub(crate) fn new(queue: ClipQueue) -> Self {
        Self { queue, pending: None }
    }

    fn push(&self, action: ClipAction) {
        if let Ok(mut q) = self.queue.lock() {
            q.push_back(action);
        }
    }
}

impl ironrdp_pdu::AsAny for TextClipboard {
    fn as_any(&self) -> &dyn std::any::Any {
        self
    }

    fn as_any_mut(&mut self) -> &mut dyn std::any::Any {
        self
    }
}

impl CliprdrBackend for TextClipboard {
    fn temporary_directory(&self) -> &str {
        ".cliprdr"
    }

    fn client_capabilities(&self) -> ClipboardGeneralCapabilityFlags {
        ClipboardGeneralCapabilityFlags::empty()
    }

    fn on_ready(&mut self) {}

    fn on_request_format_list(&mut self) {
        self.push(ClipAction::AdvertiseLocal);
    }

    fn on_process_negotiated_capabilities(&mut self, _capabilities: ClipboardGeneralCapabilityFlags) {}

    fn on_remote_copy(&mut self, available_formats: &[ClipboardFormat]) {
        let has = |id: ClipboardFormatId| available_formats.iter().any(|f| f.id() == id);
        let format = if has(ClipboardFormatId::CF_UNICODETEXT) {
            Some(ClipboardFormatId::CF_UNICODETEXT)
        } else if has(ClipboardFormatId::CF_TEXT) {
            Some(ClipboardFormatId::CF_TEXT)
        } else {
            None
        };
        if let Some(format) = format {
            self.pending = Some(format);
            self.push(ClipAction::Paste(format));
        }
    }

    fn on_format_data_request(&mut self, request: FormatDataRequest) {
        self.push(ClipAction::ProvideData(request.format));
    }

    fn on_format_data_response(&mut self, response: FormatDataResponse<'_>) {
        let format = self.pending.take();
        if response.is_error() {
            self.push(ClipAction::RemoteFailed);
            return;
        }
        let text = match format {
            Some(ClipboardFormatId::CF_TEXT) => response.to_string(),
            _ => response.to_unicode_string(),
        };
        match text {
            Ok(text) => self.push(ClipAction::RemoteText(text)),
            Err(e) => {
                tracing::debug!(error = %e, "undecodable clipboard text");
                self.push(ClipAction::RemoteFailed);
            }
        }
    }

    fn on_file_contents_request(&mut self, _request: FileContentsRequest) {}

    fn on_file_contents_response(&mut self, _response: FileContentsResponse<'_>) {}

    fn on_lock(&mut self, _data_id: LockDataId) {}

    fn on_unlock(&mut self, _data_id: LockDataId) {}
}

/// The format list we advertise for a local text.
pub(crate) fn text_formats(has_text: bool) -> Vec<ClipboardFormat> {
    if has_text {
        vec![ClipboardFormat::new(ClipboardFormatId::CF_UNICODETEXT)]
    } else {
        Vec::new()
    }
}
