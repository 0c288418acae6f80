# The further control planes (after the first, which 'cloister apply' initialises): one
# confidential VM each, under the name the owner's authorization names. A scale set names its
# instances itself, so these are individual VMs with the scale set's confidential settings
# (vTPM on, VM guest state encrypted: Azure's "ConfidentialVM" security type), each with its own
# state disk and its own cloister-control-plane-authorization tag, in the load balancer's pool
# with the first control plane. No agent, no extensions, no managed identity.

variable "nodes" {
  type        = map(string)
  description = "Node name => the owner's control-plane authorization for that name."
}

variable "location" {
  type = string
}

variable "resource_group" {
  type = string
}

variable "zone" {
  type = string
}

variable "instance_type" {
  type = string
}

variable "image_id" {
  type = string
}

variable "subnet_id" {
  type = string
}

variable "backend_pool_id" {
  type = string
}

variable "state_disk_gb" {
  type = number
}

variable "tags" {
  type = map(string)
}

variable "metadata" {
  type        = map(string)
  description = "The cloister-* keys lib/metadata reads (tags: IMDS compute.tagsList), but the authorization."
}

# Azure demands an administrator credential; the image has no SSH server and no agent: the
# password opens nothing. Random, never shown.
resource "random_password" "admin" {
  length  = 32
  special = true
}

resource "azurerm_network_interface" "node" {
  for_each            = var.nodes
  name                = "${each.key}-nic"
  location            = var.location
  resource_group_name = var.resource_group
  tags                = var.tags
  ip_configuration {
    name                          = "ip"
    primary                       = true
    subnet_id                     = var.subnet_id
    private_ip_address_allocation = "Dynamic"
  }
}

resource "azurerm_network_interface_backend_address_pool_association" "node" {
  for_each                = var.nodes
  network_interface_id    = azurerm_network_interface.node[each.key].id
  ip_configuration_name   = "ip"
  backend_address_pool_id = var.backend_pool_id
}

resource "azurerm_linux_virtual_machine" "node" {
  for_each                        = var.nodes
  name                            = each.key
  location                        = var.location
  resource_group_name             = var.resource_group
  size                            = var.instance_type
  zone                            = var.zone == "" ? null : var.zone
  source_image_id                 = var.image_id
  network_interface_ids           = [azurerm_network_interface.node[each.key].id]
  admin_username                  = "cloister"
  admin_password                  = random_password.admin.result
  disable_password_authentication = false
  provision_vm_agent              = false
  allow_extension_operations      = false
  vtpm_enabled                    = true
  secure_boot_enabled             = false
  tags = merge(var.tags, var.metadata, {
    cloister-control-plane-authorization = each.value
  })

  os_disk {
    caching                  = "ReadOnly"
    storage_account_type     = "Premium_LRS"
    security_encryption_type = "VMGuestStateOnly"
  }

  boot_diagnostics {
  }

  # A new image never replaces a running control plane: a replacement has a new state disk,
  # which the join service that admitted this one refuses under its name. (The scale sets'
  # upgrade mode is Manual for the same reason.)
  lifecycle {
    ignore_changes = [source_image_id]
  }
}

# The state disk the disk mapper encrypts (LUKS2) with a key released only after attestation
# (LUN 0, as in the scale sets).
resource "azurerm_managed_disk" "state" {
  for_each             = var.nodes
  name                 = "${each.key}-state"
  location             = var.location
  resource_group_name  = var.resource_group
  zone                 = var.zone == "" ? null : var.zone
  storage_account_type = "Premium_LRS"
  create_option        = "Empty"
  disk_size_gb         = var.state_disk_gb
  tags                 = var.tags
}

resource "azurerm_virtual_machine_data_disk_attachment" "state" {
  for_each           = var.nodes
  managed_disk_id    = azurerm_managed_disk.state[each.key].id
  virtual_machine_id = azurerm_linux_virtual_machine.node[each.key].id
  lun                = 0
  caching            = "None"
}

output "names" {
  value = keys(azurerm_linux_virtual_machine.node)
}
