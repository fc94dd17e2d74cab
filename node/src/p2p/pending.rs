//! A bound on inbound connections still in their handshake, per remote address.
//!
//! libp2p bounds pending inbound connections only in total (`max_pending_incoming`):
//! one host that opens that many sockets and stays silent until the handshake timeout
//! holds every slot, and each socket it re-opens keeps every honest peer out. Counting
//! per address leaves the slots of the total to the others.

use libp2p::core::transport::PortUse;
use libp2p::core::{multiaddr::Protocol, Endpoint, Multiaddr};
use libp2p::swarm::behaviour::{ConnectionEstablished, FromSwarm, ListenFailure};
use libp2p::swarm::{
    dummy, ConnectionClosed, ConnectionDenied, ConnectionId, NetworkBehaviour, THandler,
    THandlerInEvent, THandlerOutEvent, ToSwarm,
};
use libp2p::PeerId;
use std::collections::BTreeMap;
use std::net::IpAddr;
use std::task::{Context, Poll};

/// Refused: the address already has its share of handshakes in progress.
#[derive(Debug, thiserror::Error)]
#[error("{ip} already has {pending} inbound connections in their handshake")]
pub struct TooManyPending {
    ip: IpAddr,
    pending: usize,
}

#[derive(Debug)]
pub struct Behaviour {
    max_per_ip: usize,
    pending: BTreeMap<ConnectionId, IpAddr>,
    per_ip: BTreeMap<IpAddr, usize>,
}

impl Behaviour {
    pub fn new(max_per_ip: usize) -> Behaviour {
        Behaviour {
            max_per_ip,
            pending: BTreeMap::new(),
            per_ip: BTreeMap::new(),
        }
    }

    fn done(&mut self, id: ConnectionId) {
        if let Some(ip) = self.pending.remove(&id) {
            if let Some(n) = self.per_ip.get_mut(&ip) {
                *n -= 1;
                if *n == 0 {
                    self.per_ip.remove(&ip);
                }
            }
        }
    }
}

fn ip_of(addr: &Multiaddr) -> Option<IpAddr> {
    addr.iter().find_map(|p| match p {
        Protocol::Ip4(a) => Some(IpAddr::V4(a)),
        Protocol::Ip6(a) => Some(IpAddr::V6(a)),
        _ => None,
    })
}

impl NetworkBehaviour for Behaviour {
    type ConnectionHandler = dummy::ConnectionHandler;
    type ToSwarm = std::convert::Infallible;

    fn handle_pending_inbound_connection(
        &mut self,
        id: ConnectionId,
        _local: &Multiaddr,
        remote: &Multiaddr,
    ) -> Result<(), ConnectionDenied> {
        let Some(ip) = ip_of(remote) else {
            return Ok(());
        };
        let pending = self.per_ip.get(&ip).copied().unwrap_or(0);
        if pending >= self.max_per_ip {
            return Err(ConnectionDenied::new(TooManyPending { ip, pending }));
        }
        self.pending.insert(id, ip);
        *self.per_ip.entry(ip).or_default() += 1;
        Ok(())
    }

    fn handle_established_inbound_connection(
        &mut self,
        id: ConnectionId,
        _peer: PeerId,
        _local: &Multiaddr,
        _remote: &Multiaddr,
    ) -> Result<THandler<Self>, ConnectionDenied> {
        self.done(id);
        Ok(dummy::ConnectionHandler)
    }

    fn handle_established_outbound_connection(
        &mut self,
        _id: ConnectionId,
        _peer: PeerId,
        _addr: &Multiaddr,
        _role: Endpoint,
        _port_use: PortUse,
    ) -> Result<THandler<Self>, ConnectionDenied> {
        Ok(dummy::ConnectionHandler)
    }

    fn on_swarm_event(&mut self, event: FromSwarm) {
        match event {
            FromSwarm::ListenFailure(ListenFailure { connection_id, .. })
            | FromSwarm::ConnectionEstablished(ConnectionEstablished { connection_id, .. })
            | FromSwarm::ConnectionClosed(ConnectionClosed { connection_id, .. }) => {
                self.done(connection_id)
            }
            _ => {}
        }
    }

    fn on_connection_handler_event(
        &mut self,
        _peer: PeerId,
        _id: ConnectionId,
        event: THandlerOutEvent<Self>,
    ) {
        match event {}
    }

    fn poll(
        &mut self,
        _cx: &mut Context<'_>,
    ) -> Poll<ToSwarm<Self::ToSwarm, THandlerInEvent<Self>>> {
        Poll::Pending
    }
}
