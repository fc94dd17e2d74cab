//! The block-sync wire format: length-prefixed borsh with a size bound per direction.

use atonomi_consensus::net::{SyncRequest, SyncResponse, MAX_SYNC_REQUEST, MAX_SYNC_RESPONSE};
use atonomi_primitives::codec;
use borsh::{BorshDeserialize, BorshSerialize};
use futures::{AsyncReadExt, AsyncWriteExt};
use libp2p::{request_response, StreamProtocol};

/// Length-prefixed borsh with a size bound per direction.
#[derive(Debug, Clone, Default)]
pub struct SyncCodec;

async fn read_framed<T: futures::AsyncRead + Unpin + Send, V: BorshDeserialize>(
    io: &mut T,
    max: usize,
) -> std::io::Result<V> {
    let mut len = [0u8; 4];
    io.read_exact(&mut len).await?;
    let len = u32::from_be_bytes(len) as usize;
    if len > max {
        return Err(std::io::Error::new(
            std::io::ErrorKind::InvalidData,
            format!("frame of {len} bytes exceeds {max}"),
        ));
    }
    let mut buf = vec![0u8; len];
    io.read_exact(&mut buf).await?;
    codec::decode(&buf, max)
        .map_err(|e| std::io::Error::new(std::io::ErrorKind::InvalidData, e.to_string()))
}

async fn write_framed<T: futures::AsyncWrite + Unpin + Send, V: BorshSerialize>(
    io: &mut T,
    v: &V,
) -> std::io::Result<()> {
    let bytes = codec::encode(v);
    io.write_all(&(bytes.len() as u32).to_be_bytes()).await?;
    io.write_all(&bytes).await?;
    io.close().await
}

impl request_response::Codec for SyncCodec {
    type Protocol = StreamProtocol;
    type Request = SyncRequest;
    type Response = SyncResponse;

    async fn read_request<T: futures::AsyncRead + Unpin + Send>(
        &mut self,
        _: &StreamProtocol,
        io: &mut T,
    ) -> std::io::Result<SyncRequest> {
        read_framed(io, MAX_SYNC_REQUEST).await
    }

    async fn read_response<T: futures::AsyncRead + Unpin + Send>(
        &mut self,
        _: &StreamProtocol,
        io: &mut T,
    ) -> std::io::Result<SyncResponse> {
        read_framed(io, MAX_SYNC_RESPONSE).await
    }

    async fn write_request<T: futures::AsyncWrite + Unpin + Send>(
        &mut self,
        _: &StreamProtocol,
        io: &mut T,
        req: SyncRequest,
    ) -> std::io::Result<()> {
        write_framed(io, &req).await
    }

    async fn write_response<T: futures::AsyncWrite + Unpin + Send>(
        &mut self,
        _: &StreamProtocol,
        io: &mut T,
        res: SyncResponse,
    ) -> std::io::Result<()> {
        write_framed(io, &res).await
    }
}
