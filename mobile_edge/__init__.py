"""The mobile-edge surface (`/api/mobile-edge/*`): one set of routes over a store, served by the
hub on PostgreSQL and by every edge agent from its replica, offline included."""
