# A standard public load balancer, a TCP rule and probe per port, the control planes behind it.
# TCP only: aTLS ends on the node.

variable "name" {
  type = string
}

variable "location" {
  type = string
}

variable "resource_group" {
  type = string
}

variable "ports" {
  type = map(number)
}

variable "tags" {
  type = map(string)
}

resource "azurerm_public_ip" "endpoint" {
  name                = "${var.name}-endpoint"
  location            = var.location
  resource_group_name = var.resource_group
  allocation_method   = "Static"
  sku                 = "Standard"
  tags                = var.tags
}

resource "azurerm_lb" "lb" {
  name                = var.name
  location            = var.location
  resource_group_name = var.resource_group
  sku                 = "Standard"
  tags                = var.tags
  frontend_ip_configuration {
    name                 = "endpoint"
    public_ip_address_id = azurerm_public_ip.endpoint.id
  }
}

resource "azurerm_lb_backend_address_pool" "control_plane" {
  name            = "control-plane"
  loadbalancer_id = azurerm_lb.lb.id
}

resource "azurerm_lb_probe" "port" {
  for_each            = var.ports
  name                = each.key
  loadbalancer_id     = azurerm_lb.lb.id
  protocol            = "Tcp"
  port                = each.value
  interval_in_seconds = 5
}

resource "azurerm_lb_rule" "port" {
  for_each                       = var.ports
  name                           = each.key
  loadbalancer_id                = azurerm_lb.lb.id
  protocol                       = "Tcp"
  frontend_port                  = each.value
  backend_port                   = each.value
  frontend_ip_configuration_name = "endpoint"
  backend_address_pool_ids       = [azurerm_lb_backend_address_pool.control_plane.id]
  probe_id                       = azurerm_lb_probe.port[each.key].id
  disable_outbound_snat          = true
}

output "address" {
  value = azurerm_public_ip.endpoint.ip_address
}

output "backend_pool_id" {
  value = azurerm_lb_backend_address_pool.control_plane.id
}

output "probe_ids" {
  value = { for k, p in azurerm_lb_probe.port : k => p.id }
}
