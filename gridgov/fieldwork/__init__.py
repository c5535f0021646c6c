"""Field work on a phone, whatever the work is: geofenced check-in (geofence.py) and evidence
files (evidence.py: the type read from the bytes, limits, SHA-256, EXIF time and position,
thumbnails). Appeal tasks (gridgov/appeals/field_tasks.py) and whistle musters
(gridgov/whistles/services.py) both use it; it imports neither, and stores nothing: each
caller keeps its own records."""
