# The nodes' network: one subnet, outbound through a NAT gateway (nodes have no public address),
# a security group that lets in exactly the load-balanced ports. No SSH: a node has no login.

variable "name" {
  type = string
}

variable "location" {
  type = string
}

variable "resource_group" {
  type = string
}

variable "node_cidr" {
  type = string
}

variable "ports" {
  type = list(number)
}

variable "tags" {
  type = map(string)
}

resource "azurerm_virtual_network" "net" {
  name                = var.name
  location            = var.location
  resource_group_name = var.resource_group
  address_space       = [var.node_cidr]
  tags                = var.tags
}

resource "azurerm_subnet" "nodes" {
  name                 = "${var.name}-nodes"
  resource_group_name  = var.resource_group
  virtual_network_name = azurerm_virtual_network.net.name
  address_prefixes     = [var.node_cidr]
}

resource "azurerm_public_ip" "nat" {
  name                = "${var.name}-nat"
  location            = var.location
  resource_group_name = var.resource_group
  allocation_method   = "Static"
  sku                 = "Standard"
  tags                = var.tags
}

resource "azurerm_nat_gateway" "nat" {
  name                = "${var.name}-nat"
  location            = var.location
  resource_group_name = var.resource_group
  sku_name            = "Standard"
  tags                = var.tags
}

resource "azurerm_nat_gateway_public_ip_association" "nat" {
  nat_gateway_id       = azurerm_nat_gateway.nat.id
  public_ip_address_id = azurerm_public_ip.nat.id
}

resource "azurerm_subnet_nat_gateway_association" "nodes" {
  subnet_id      = azurerm_subnet.nodes.id
  nat_gateway_id = azurerm_nat_gateway.nat.id
}

resource "azurerm_network_security_group" "nodes" {
  name                = var.name
  location            = var.location
  resource_group_name = var.resource_group
  tags                = var.tags
}

# The load-balanced ports from anywhere (a standard load balancer keeps the client's address).
resource "azurerm_network_security_rule" "port" {
  for_each                    = toset([for p in var.ports : tostring(p)])
  name                        = "cloister-${each.value}"
  priority                    = 100 + index(var.ports, tonumber(each.value))
  direction                   = "Inbound"
  access                      = "Allow"
  protocol                    = "Tcp"
  source_port_range           = "*"
  destination_port_range      = each.value
  source_address_prefix       = "*"
  destination_address_prefix  = "*"
  resource_group_name         = var.resource_group
  network_security_group_name = azurerm_network_security_group.nodes.name
}

resource "azurerm_subnet_network_security_group_association" "nodes" {
  subnet_id                 = azurerm_subnet.nodes.id
  network_security_group_id = azurerm_network_security_group.nodes.id
}

output "subnet_id" {
  value = azurerm_subnet.nodes.id
}
