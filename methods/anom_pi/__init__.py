"""Anom-π: an active video-reviewing agent trained by iDPO under the AEI utility
(``methods/anom_pi/README.md`` records every design choice)."""
