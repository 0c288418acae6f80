# The image built here, uploaded as a page blob and published in a shared image gallery as an
# image marked confidential-VM supported (Azure refuses VMGuestStateOnly on any other image).

variable "name" {
  type = string
}

variable "uid" {
  type = string
}

variable "location" {
  type = string
}

variable "resource_group" {
  type = string
}

variable "image_file" {
  type        = string
  description = "A fixed VHD whose virtual size is a whole number of MiB (make image writes it)."
  validation {
    condition     = endswith(var.image_file, ".vhd")
    error_message = "image_file: a fixed .vhd, as Azure imports it."
  }
}

variable "tags" {
  type = map(string)
}

resource "azurerm_storage_account" "images" {
  name                            = "cloister${var.uid}"
  location                        = var.location
  resource_group_name             = var.resource_group
  account_tier                    = "Standard"
  account_replication_type        = "LRS"
  allow_nested_items_to_be_public = false
  min_tls_version                 = "TLS1_2"
  tags                            = var.tags
}

resource "azurerm_storage_container" "images" {
  name                  = "images"
  storage_account_id    = azurerm_storage_account.images.id
  container_access_type = "private"
}

resource "azurerm_storage_blob" "image" {
  name                   = "${var.name}.vhd"
  storage_account_name   = azurerm_storage_account.images.name
  storage_container_name = azurerm_storage_container.images.name
  type                   = "Page"
  source                 = var.image_file
}

resource "azurerm_shared_image_gallery" "gallery" {
  name                = replace(var.name, "-", "_")
  location            = var.location
  resource_group_name = var.resource_group
  tags                = var.tags
}

resource "azurerm_shared_image" "image" {
  name                      = var.name
  gallery_name              = azurerm_shared_image_gallery.gallery.name
  location                  = var.location
  resource_group_name       = var.resource_group
  os_type                   = "Linux"
  hyper_v_generation        = "V2"
  architecture              = "x64"
  confidential_vm_supported = true
  tags                      = var.tags
  identifier {
    publisher = "cloister"
    offer     = "cloister"
    sku       = var.name
  }
}

resource "azurerm_shared_image_version" "image" {
  name                = "1.0.0"
  gallery_name        = azurerm_shared_image_gallery.gallery.name
  image_name          = azurerm_shared_image.image.name
  location            = var.location
  resource_group_name = var.resource_group
  blob_uri            = azurerm_storage_blob.image.url
  storage_account_id  = azurerm_storage_account.images.id
  tags                = var.tags
  target_region {
    name                   = var.location
    regional_replica_count = 1
    storage_account_type   = "Standard_LRS"
  }
}

output "image_id" {
  value = azurerm_shared_image_version.image.id
}
