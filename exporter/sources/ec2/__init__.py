"""EC2: DescribeVpnConnections and DescribeCustomerGateways, read into the model."""
