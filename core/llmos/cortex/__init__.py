"""The cortex: Claude, driven through claude-agent-sdk, under the kernel's control."""
