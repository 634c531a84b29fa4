"""Stand-ins for the GPU box's services, speaking their real HTTP APIs (tests only)."""
