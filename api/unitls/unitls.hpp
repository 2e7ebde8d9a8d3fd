// Everything unitls offers, in one include.
#pragma once

#include <unitls/backend.hpp>
#include <unitls/certificate.hpp>
#include <unitls/context.hpp>
#include <unitls/error.hpp>
#include <unitls/make_credential.hpp>
#include <unitls/secure_socket.hpp>
#include <unitls/transport.hpp>
#include <unitls/version.hpp>
