// Dataset layer: see Package.swift for what it may import.
