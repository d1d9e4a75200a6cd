"""CartRover-compatible connections served by orderbridge's own API (/v1): an "API Access" cart as a
source and a warehouse that pulls its work through the API as a backend."""
