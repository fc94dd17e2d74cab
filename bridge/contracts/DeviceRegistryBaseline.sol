// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.24;

/// @title The original per-device design, for comparison only (BENCHMARKS.md).
/// @notice One storage record per device and a token fee transferred per device, as the
/// original Atonomi contracts did: this is what anchoring identities one by one on
/// Ethereum costs. Not used by the ledger.
contract BaselineToken {
    mapping(address => uint256) public balanceOf;
    mapping(address => mapping(address => uint256)) public allowance;

    event Transfer(address indexed from, address indexed to, uint256 value);

    constructor(uint256 supply) {
        balanceOf[msg.sender] = supply;
    }

    function approve(address spender, uint256 value) external returns (bool) {
        allowance[msg.sender][spender] = value;
        return true;
    }

    function transferFrom(address from, address to, uint256 value) external returns (bool) {
        uint256 a = allowance[from][msg.sender];
        require(a >= value && balanceOf[from] >= value, "insufficient");
        if (a != type(uint256).max) allowance[from][msg.sender] = a - value;
        balanceOf[from] -= value;
        balanceOf[to] += value;
        emit Transfer(from, to, value);
        return true;
    }
}

contract DeviceRegistryBaseline {
    struct Device {
        bytes32 publicKey;
        address manufacturer;
        uint32 reputation;
        bool activated;
    }

    BaselineToken public immutable token;
    address public immutable treasury;
    uint256 public immutable fee;
    mapping(bytes32 => Device) public devices;

    error AlreadyRegistered(bytes32 id);

    event DeviceRegistered(bytes32 indexed id, address indexed manufacturer);

    constructor(BaselineToken token_, address treasury_, uint256 fee_) {
        token = token_;
        treasury = treasury_;
        fee = fee_;
    }

    function registerDevice(bytes32 id, bytes32 publicKey) public {
        if (devices[id].manufacturer != address(0)) revert AlreadyRegistered(id);
        require(token.transferFrom(msg.sender, treasury, fee), "fee");
        devices[id] = Device(publicKey, msg.sender, 5000, false);
        emit DeviceRegistered(id, msg.sender);
    }

    function registerDevices(bytes32[] calldata ids, bytes32[] calldata publicKeys) external {
        require(ids.length == publicKeys.length, "lengths");
        for (uint256 i = 0; i < ids.length; i++) {
            registerDevice(ids[i], publicKeys[i]);
        }
    }
}
