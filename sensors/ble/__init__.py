"""Bluetooth LE devices. The only package in Medius that imports bleak."""
