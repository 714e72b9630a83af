#!/usr/bin/env python3
"""Independent check of the subsampled-Gaussian accountant (SampledGaussianRDP.swift).

Computes A_alpha = E_{x~N(0,z^2)}[((1-q) + q*exp((2x-1)/(2z^2)))^alpha] by numerical
integration in 60-digit arithmetic (mpmath.quad), straight from the definition in Mironov,
Talwar, Zhang 2019 -- no series, no log-space tricks -- then RDP = T*log(A)/(alpha-1) and
eps = min over Opacus's default orders of RDP - (log delta + log alpha)/(alpha-1) + log((alpha-1)/alpha).
Prints one line per point: q z T delta eps alpha. The Swift tests hold these figures.
"""
import mpmath as mp

mp.mp.dps = 60
ORDERS = [1 + x / 10.0 for x in range(1, 100)] + list(range(12, 64))

def log_a(q, z, alpha):
    q, z, alpha = mp.mpf(q), mp.mpf(z), mp.mpf(alpha)
    f = lambda x: mp.npdf(x, 0, z) * ((1 - q) + q * mp.exp((2 * x - 1) / (2 * z * z))) ** alpha
    # Split at the points where the integrand changes scale, so quad resolves both humps.
    peak = alpha / (z * z) * z * z  # the shifted mode is near alpha (tilted Gaussian); add 0 and 1 too
    points = sorted(set([-mp.inf, -20 * z, 0, 0.5, 1, float(alpha), 20 * z + alpha, mp.inf]))
    return mp.log(mp.quad(f, points))

def epsilon(q, z, steps, delta):
    best = (mp.inf, None)
    for a in ORDERS:
        rdp = steps * log_a(q, z, a) / (a - 1)
        eps = rdp - (mp.log(delta) + mp.log(a)) / (a - 1) + mp.log((a - 1) / mp.mpf(a))
        if eps < best[0]:
            best = (eps, a)
    return best

POINTS = [
    (256 / 60000, 1.1, 14100, 1e-5),
    (0.01, 1.0, 1000, 1e-5),
    (0.02, 0.8, 500, 1e-6),
    (0.001, 2.0, 100000, 1e-5),
    (0.05, 1.5, 200, 1e-5),
    (256 / 60000, 0.7, 2000, 1e-5),
]

if __name__ == "__main__":
    for q, z, steps, delta in POINTS:
        eps, alpha = epsilon(q, z, steps, delta)
        print(f"{q!r} {z!r} {steps} {delta!r} {mp.nstr(eps, 12)} {alpha}")
