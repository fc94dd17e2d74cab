//! Read-only questions about state that RPC, the device SDK and the runtime itself
//! ask: a device's reputation and the validate-device answer a device checks before it
//! trades with a peer.

use crate::error::Fatal;
use crate::error::{fatal, ExecError};
use crate::overlay::Overlay;
use crate::state::StateReader;
pub use atonomi_primitives::query::Validation;
use atonomi_primitives::state::{
    DataPolicy, Device, DeviceStatus, Manufacturer, MemberStatus, ReputationAggregate, StateKey,
    Subject,
};
use atonomi_primitives::{DeviceId, Params, Score};

pub(crate) fn device_reputation_in<R: StateReader + ?Sized>(
    o: &Overlay<R>,
    d: &Device,
    rep_type: &str,
) -> Result<Score, ExecError> {
    let agg: Option<ReputationAggregate> = o.get(&StateKey::ReputationAggregate {
        subject: Subject::Device(d.id),
        rep_type: rep_type.to_string(),
    })?;
    if let Some(a) = agg {
        return Ok(a.median);
    }
    let m: Option<Manufacturer> = o.get(&StateKey::Manufacturer(d.manufacturer))?;
    Ok(m.map(|m| m.default_score).unwrap_or_default())
}

/// Validates `peer` for `requester` (the asking device, whose policy applies) with an
/// optional extra threshold from the caller.
pub fn validate_device<R: StateReader + ?Sized>(
    state: &R,
    peer: DeviceId,
    requester: Option<DeviceId>,
    min_reputation: Option<Score>,
) -> Result<Validation, Fatal> {
    let o = Overlay::new(state);
    let params: Params = o.get(&StateKey::Params).map_err(fatal)?.unwrap_or_default();
    let dev: Option<Device> = o.get(&StateKey::Device(peer)).map_err(fatal)?;
    let req: Option<Device> = match requester {
        Some(r) => o.get(&StateKey::Device(r)).map_err(fatal)?,
        None => None,
    };
    let mut threshold = params.min_reputation;
    if let Some(m) = min_reputation {
        threshold = threshold.max(m);
    }
    if let Some(m) = req
        .as_ref()
        .and_then(|r| r.attributes.counterparty_min_reputation)
    {
        threshold = threshold.max(m);
    }
    let mut reasons = Vec::new();
    if requester.is_some() && req.is_none() {
        reasons.push("requester is not a registered device".to_string());
    }
    let Some(d) = dev else {
        reasons.push("peer is not registered".to_string());
        let policy_allows = req
            .as_ref()
            .is_none_or(|r| r.attributes.data_policy == DataPolicy::Any);
        return Ok(Validation {
            device: peer,
            registered: false,
            status: None,
            active: false,
            reputation: None,
            threshold,
            meets_threshold: false,
            policy_allows,
            manufacturer_active: false,
            ok: false,
            reasons,
        });
    };
    let active = d.status == DeviceStatus::Active;
    if !active {
        reasons.push(format!("peer status is {:?}", d.status));
    }
    let reputation =
        device_reputation_in(&o, &d, &params.payment_reputation_type).map_err(fatal)?;
    let meets_threshold = reputation >= threshold;
    if !meets_threshold {
        reasons.push(format!(
            "reputation {} is below {}",
            reputation.get(),
            threshold.get()
        ));
    }
    let m: Option<Manufacturer> = o
        .get(&StateKey::Manufacturer(d.manufacturer))
        .map_err(fatal)?;
    let manufacturer_active = m.is_some_and(|m| m.status == MemberStatus::Active);
    if !manufacturer_active {
        reasons.push("peer's manufacturer is not active".to_string());
    }
    let policy_allows = match &req {
        None => requester.is_none(),
        Some(r) => match r.attributes.data_policy {
            DataPolicy::Any => true,
            DataPolicy::RegisteredOnly => d.status != DeviceStatus::Revoked,
            DataPolicy::InsideArea => match (r.attributes.geo_area, d.attributes.location) {
                (Some(area), Some(loc)) => area.contains(&loc),
                _ => false,
            },
        },
    };
    if !policy_allows && req.is_some() {
        reasons.push("requester's data policy does not allow this peer".to_string());
    }
    let ok = active && meets_threshold && policy_allows && manufacturer_active;
    Ok(Validation {
        device: peer,
        registered: true,
        status: Some(d.status),
        active,
        reputation: Some(reputation),
        threshold,
        meets_threshold,
        policy_allows,
        manufacturer_active,
        ok,
        reasons,
    })
}
