"""The built-in demo: a simulated AWS (moto) holding every case of AWS's knowledge-center
article on Site-to-Site VPN tunnels DOWN with IPSEC UP."""
